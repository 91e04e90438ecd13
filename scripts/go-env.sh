# Sourced by the scripts that build Go tools (install-control-plane.sh, install-prometheus.sh,
# install-jaeger.sh): one module and build cache under ~/.cache/panthera shared by all of them,
# so the dependencies they have in common are downloaded and compiled once; the machine's Go
# toolchain only (no download of another); static binaries.
CACHE="${PANTHERA_CACHE:-$HOME/.cache/panthera}"
export GOTOOLCHAIN=local CGO_ENABLED=0
export GOPATH="${GOPATH:-$CACHE/go}"
export GOMODCACHE="${GOMODCACHE:-$CACHE/go/pkg/mod}"
export GOCACHE="${PANTHERA_GOCACHE:-$CACHE/go-build}"
