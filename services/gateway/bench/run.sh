#!/usr/bin/env bash
# Benchmark: panthera-gateway vs nginx as reverse proxies in front of the same small upstream.
#
#   services/gateway/bench/run.sh            # defaults: 3 rounds x 10 s per target, 64 connections
#   DURATION=5 ROUNDS=1 CONNECTIONS=128 services/gateway/bench/run.sh
#   BENCH_RT=1 services/gateway/bench/run.sh   # real-time priority for every process under test
#
# Tracing: the plain gateway runs three times, with tracing off (no OTLP endpoint) and with
# OpenTelemetry spans sampled at 10% and at 100%, exported over OTLP/HTTP to a sink (a second
# nginx answering 200 to every export, on the load side's core, so the figures are the gateway's
# cost of tracing, not a collector's).
#
# Layout: wrk on core 0, the upstream on core 2 (core 0 with only 2 cores); nginx (1 worker)
# and the gateway (single-threaded runtime) take turns on core 1, so each proxy gets exactly
# one core. A byte relay with no HTTP work (gateway-bench-relay) runs as a fourth target: the
# floor, i.e. the most the load side lets any proxy show. The summary also prints the proxy
# core's CPU per request and how idle the load side was: on 2 cores wrk and the upstream
# saturate core 0 before either proxy does.
# Access logs are OFF for both proxies (nginx `access_log off`, gateway `--no-access-log`).
# nginx keeps idle keep-alive connections to the upstream (`keepalive 128`), like the gateway's pool.
# Targets are alternated per round and the median round is reported, so background load hits
# both proxies alike. Exits non-zero only when setup fails, never because a target was missed.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
ROUNDS="${ROUNDS:-3}"
CONNECTIONS="${CONNECTIONS:-64}"
UPSTREAM_PORT="${UPSTREAM_PORT:-18081}"
NGINX_PORT="${NGINX_PORT:-18082}"
GW_PORT="${GW_PORT:-18083}"
GW_AUTH_PORT="${GW_AUTH_PORT:-18084}"
RELAY_PORT="${RELAY_PORT:-18085}"
GW_UNSIGNED_PORT="${GW_UNSIGNED_PORT:-18086}"
GW_TRACED10_PORT="${GW_TRACED10_PORT:-18087}"
GW_TRACED100_PORT="${GW_TRACED100_PORT:-18088}"
OTLP_SINK_PORT="${OTLP_SINK_PORT:-18089}"

die() { echo "bench: $*" >&2; exit 1; }
for tool in nginx wrk taskset curl python3; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || die "$tool is not installed (apt-get install nginx wrk util-linux curl python3)"
done
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
CORES="$(nproc)"
# The benchmark usually shares the machine with compilers; a higher priority (same for every
# process under test) keeps their noise out of the comparison. Needs root; 0 otherwise.
# BENCH_RT=1 (root) uses SCHED_FIFO instead: cleanest figures, but it starves other work on
# both cores for the length of the run.
if [ "$(id -u)" = 0 ]; then NICE="${NICE:--10}"; else NICE="${NICE:-0}"; fi
RUN=(nice -n "$NICE")
if [ "${BENCH_RT:-0}" = 1 ] && [ "$(id -u)" = 0 ]; then RUN=(chrt -f 10); NICE="rt"; fi
# With 3+ cores the upstream gets its own core too, as the comparison should have it; on 2 cores
# it shares wrk's.
if [ "$CORES" -ge 3 ]; then LOAD_CPU=0; PROXY_CPU=1; UPSTREAM_CPU=2
elif [ "$CORES" -ge 2 ]; then LOAD_CPU=0; PROXY_CPU=1; UPSTREAM_CPU=0
else LOAD_CPU=0; PROXY_CPU=0; UPSTREAM_CPU=0; fi

echo "bench: building release binaries" >&2
(cd "$ROOT" && cargo build --release -p panthera-gateway --bins --quiet) || die "release build failed"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET_DIR/release"
[ -x "$BIN/panthera-gateway" ] || die "missing $BIN/panthera-gateway"

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  kill "$(cat "$WORK/nginx.pid" 2>/dev/null)" 2>/dev/null || true
  kill "$(cat "$WORK/sink.pid" 2>/dev/null)" 2>/dev/null || true
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_http() {
  local url=$1; shift
  for _ in $(seq 1 100); do
    if curl -fsS -o /dev/null "$@" "$url" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  die "no 2xx from $url"
}
for port in "$UPSTREAM_PORT" "$NGINX_PORT" "$GW_PORT" "$GW_AUTH_PORT" "$RELAY_PORT" "$GW_UNSIGNED_PORT" \
  "$GW_TRACED10_PORT" "$GW_TRACED100_PORT" "$OTLP_SINK_PORT" \
  $((GW_PORT + 100)) $((GW_AUTH_PORT + 100)) $((GW_UNSIGNED_PORT + 100)) \
  $((GW_TRACED10_PORT + 100)) $((GW_TRACED100_PORT + 100)); do
  port_free "$port" || die "port $port is in use (set *_PORT variables)"
done

# Upstream
"${RUN[@]}" taskset -c "$UPSTREAM_CPU" "$BIN/gateway-bench-upstream" "127.0.0.1:$UPSTREAM_PORT" &
PIDS+=($!)

# nginx: one worker, keep-alive to the upstream, no access log.
mkdir -p "$WORK/nginx"
cat >"$WORK/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; multi_accept on; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  keepalive_requests 1000000;
  upstream backend { server 127.0.0.1:$UPSTREAM_PORT; keepalive 128; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:$NGINX_PORT reuseport;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_buffering on;
    }
  }
}
EOF
"${RUN[@]}" taskset -c "$PROXY_CPU" "$NGINX" -c "$WORK/nginx.conf" -p "$WORK/nginx" -e "$WORK/nginx-error.log" 2>"$WORK/nginx.stderr" &
PIDS+=($!)

# The OTLP sink of the traced gateways: every export answered 200 (an empty
# ExportTraceServiceResponse), on the load side's core.
mkdir -p "$WORK/sink"
cat >"$WORK/sink.conf" <<EOF
worker_processes 1;
daemon off;
pid $WORK/sink.pid;
error_log $WORK/sink-error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $WORK/sink/body;
  proxy_temp_path $WORK/sink/proxy;
  fastcgi_temp_path $WORK/sink/fastcgi;
  uwsgi_temp_path $WORK/sink/uwsgi;
  scgi_temp_path $WORK/sink/scgi;
  client_max_body_size 64m;
  server {
    listen 127.0.0.1:$OTLP_SINK_PORT;
    location /v1/traces { default_type application/x-protobuf; return 200 ""; }
  }
}
EOF
"${RUN[@]}" taskset -c "$LOAD_CPU" "$NGINX" -c "$WORK/sink.conf" -p "$WORK/sink" -e "$WORK/sink-error.log" 2>"$WORK/sink.stderr" &
PIDS+=($!)

# Gateways: plain, and with JWT (HS256) + per-method authorization rules (a role or scope the
# token has, read from its claims, identity headers sent upstream and signed, as a platform's
# gateway does) + rate limiting (limits high enough never to reject); and the same without the
# identity signature, so each run measures what signing costs on the same binary.
cat >"$WORK/gateway-plain.yaml" <<EOF
listen: "127.0.0.1:$GW_PORT"
adminListen: "127.0.0.1:$((GW_PORT + 100))"
routes:
  - {name: api, pathPrefix: /, upstream: "http://127.0.0.1:$UPSTREAM_PORT", public: true}
EOF
cat >"$WORK/gateway-auth.yaml" <<EOF
listen: "127.0.0.1:$GW_AUTH_PORT"
adminListen: "127.0.0.1:$((GW_AUTH_PORT + 100))"
routes:
  - name: api
    pathPrefix: /
    upstream: "http://127.0.0.1:$UPSTREAM_PORT"
    rules:
      - {methods: [POST, PUT, PATCH, DELETE], roles: [admin]}
      - {methods: [GET, HEAD], roles: [auditor], scopes: ["bench:read"]}
auth:
  jwt:
    issuer: https://bench.panthera.dev
    audiences: [bench]
    hs256SecretEnv: BENCH_JWT_SECRET
rateLimit:
  requestsPerSecond: 100000000
  burst: 100000000
  key: subject
identity:
  signingKeysEnv: BENCH_IDENTITY_KEYS
EOF
sed -e "s/127.0.0.1:$GW_AUTH_PORT/127.0.0.1:$GW_UNSIGNED_PORT/" \
  -e "s/127.0.0.1:$((GW_AUTH_PORT + 100))/127.0.0.1:$((GW_UNSIGNED_PORT + 100))/" \
  -e '/^identity:/,$d' "$WORK/gateway-auth.yaml" >"$WORK/gateway-unsigned.yaml"
SECRET="bench-secret-$RANDOM$RANDOM"
TOKEN="$(BENCH_SECRET="$SECRET" python3 - <<'EOF'
import base64, hmac, hashlib, json, os, time
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
claims = b64(json.dumps({"sub": "bench", "iss": "https://bench.panthera.dev", "aud": "bench",
                         "exp": int(time.time()) + 3600, "jti": "bench-token",
                         "roles": ["user"], "scope": "bench:write bench:read"}).encode())
sig = hmac.new(os.environ["BENCH_SECRET"].encode(), f"{header}.{claims}".encode(), hashlib.sha256).digest()
print(f"{header}.{claims}.{b64(sig)}")
EOF
)"

start_gateway() { # name config [VAR=value ...]
  local name=$1 config=$2
  shift 2
  env "$@" RUST_LOG=warn BENCH_JWT_SECRET="$SECRET" BENCH_IDENTITY_KEYS="bench-identity-key-$SECRET-0123456789" \
    "${RUN[@]}" taskset -c "$PROXY_CPU" \
    "$BIN/panthera-gateway" --config "$config" --no-access-log --drain-delay-seconds 0 \
    >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
}
# The floor: a byte relay with no HTTP work, on the proxies' core. Its req/s is the most the
# load side lets any proxy show here; its CPU per request is the kernel's and tokio's share.
"${RUN[@]}" taskset -c "$PROXY_CPU" "$BIN/gateway-bench-relay" "127.0.0.1:$RELAY_PORT" \
  "127.0.0.1:$UPSTREAM_PORT" &
PIDS+=($!)
start_gateway gateway-plain "$WORK/gateway-plain.yaml"
start_gateway gateway-auth "$WORK/gateway-auth.yaml"
start_gateway gateway-unsigned "$WORK/gateway-unsigned.yaml"
for ratio in 10 100; do
  port_var="GW_TRACED${ratio}_PORT"
  sed -e "s/127.0.0.1:$GW_PORT/127.0.0.1:${!port_var}/" \
    -e "s/127.0.0.1:$((GW_PORT + 100))/127.0.0.1:$((${!port_var} + 100))/" \
    "$WORK/gateway-plain.yaml" >"$WORK/gateway-traced$ratio.yaml"
  start_gateway "gateway-traced$ratio" "$WORK/gateway-traced$ratio.yaml" \
    OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$OTLP_SINK_PORT" \
    OTEL_TRACES_SAMPLER=parentbased_traceidratio \
    OTEL_TRACES_SAMPLER_ARG="$(python3 -c "print($ratio / 100)")" OTEL_SERVICE_NAME=bench-gateway
done

wait_http "http://127.0.0.1:$UPSTREAM_PORT/"
wait_http "http://127.0.0.1:$NGINX_PORT/"
wait_http "http://127.0.0.1:$GW_PORT/"
wait_http "http://127.0.0.1:$RELAY_PORT/"
wait_http "http://127.0.0.1:$GW_TRACED10_PORT/"
wait_http "http://127.0.0.1:$GW_TRACED100_PORT/"
wait_http "http://127.0.0.1:$GW_AUTH_PORT/" -H "Authorization: Bearer $TOKEN"
wait_http "http://127.0.0.1:$GW_UNSIGNED_PORT/" -H "Authorization: Bearer $TOKEN"
status="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$GW_AUTH_PORT/")"
[ "$status" = 401 ] || die "auth gateway answered $status without a token (expected 401)"

# wrk output -> "rps p50_ms p99_ms non2xx"
parse_wrk() {
  python3 -c '
import re, sys
text = sys.stdin.read()
def ms(v):
    m = re.match(r"([\d.]+)(us|ms|s)", v)
    n, unit = float(m.group(1)), m.group(2)
    return n / 1000 if unit == "us" else n * 1000 if unit == "s" else n
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
p50 = ms(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1))
p99 = ms(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1))
bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
errors = re.search(r"Socket errors:.*", text)
print(f"{rps:.0f} {p50:.3f} {p99:.3f} {int(bad.group(1)) if bad else 0}")
'
}

# "user sys softirq idle total" jiffies of one CPU, from /proc/stat.
cpu_jiffies() {
  awk -v cpu="cpu$1" '$1 == cpu { print $2 + $3, $4, $8, $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat
}

run_wrk() { # url duration [header]
  local url=$1 duration=$2; shift 2
  "${RUN[@]}" taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d"${duration}s" --latency "$@" "$url"
}

CLK_TCK="$(getconf CLK_TCK)"
declare -A RESULTS
TARGETS=(nginx gateway gateway-traced-10 gateway-traced-100 gateway-jwt-ratelimit gateway-jwt-unsigned relay-floor)
url_of() {
  case $1 in
    nginx) echo "http://127.0.0.1:$NGINX_PORT/" ;;
    gateway) echo "http://127.0.0.1:$GW_PORT/" ;;
    gateway-jwt-ratelimit) echo "http://127.0.0.1:$GW_AUTH_PORT/" ;;
    gateway-jwt-unsigned) echo "http://127.0.0.1:$GW_UNSIGNED_PORT/" ;;
    relay-floor) echo "http://127.0.0.1:$RELAY_PORT/" ;;
    gateway-traced-10) echo "http://127.0.0.1:$GW_TRACED10_PORT/" ;;
    gateway-traced-100) echo "http://127.0.0.1:$GW_TRACED100_PORT/" ;;
  esac
}
args_of() {
  case $1 in
    gateway-jwt-ratelimit | gateway-jwt-unsigned) echo "-H|Authorization: Bearer $TOKEN" ;;
  esac
}

echo "bench: $ROUNDS round(s) x ${DURATION}s per target, $CONNECTIONS connections, proxies on CPU $PROXY_CPU, wrk on CPU $LOAD_CPU, upstream on CPU $UPSTREAM_CPU, priority $NICE" >&2
for round in $(seq 1 "$ROUNDS"); do
  for target in "${TARGETS[@]}"; do
    url="$(url_of "$target")"
    IFS='|' read -r -a extra <<<"$(args_of "$target")"
    [ "${#extra[@]}" -gt 0 ] && [ -z "${extra[0]}" ] && extra=()
    run_wrk "$url" "$WARMUP" "${extra[@]}" >/dev/null
    proxy_before="$(cpu_jiffies "$PROXY_CPU")"; load_before="$(cpu_jiffies "$LOAD_CPU")"
    upstream_before="$(cpu_jiffies "$UPSTREAM_CPU")"
    out="$(run_wrk "$url" "$DURATION" "${extra[@]}")"
    proxy_after="$(cpu_jiffies "$PROXY_CPU")"; load_after="$(cpu_jiffies "$LOAD_CPU")"
    upstream_after="$(cpu_jiffies "$UPSTREAM_CPU")"
    line="$(parse_wrk <<<"$out")" || die "could not parse wrk output for $target: $out"
    requests="$(sed -nE 's/^ *([0-9]+) requests in.*/\1/p' <<<"$out")"
    # CPU the proxy core spent per request (user, system, softirq) and how idle the load core
    # was: when the load core has no idle time left, wrk and the upstream cap the figure.
    cpu="$(python3 -c '
import sys
hz, n = float(sys.argv[1]), float(sys.argv[2])
pb, pa, lb, la, ub, ua = (list(map(int, a.split())) for a in sys.argv[3:9])
p = [a - b for a, b in zip(pa, pb)]
idle = lambda b, a: 100 * (a[3] - b[3]) / max(a[4] - b[4], 1)
us = lambda j: j / hz * 1e6 / max(n, 1)
print(f"{us(p[0]):.2f} {us(p[1]):.2f} {us(p[2]):.2f} {min(idle(lb, la), idle(ub, ua)):.0f}")
' "$CLK_TCK" "${requests:-0}" "$proxy_before" "$proxy_after" "$load_before" "$load_after" \
      "$upstream_before" "$upstream_after")"
    RESULTS["$target,$round"]="$line $cpu"
    echo "bench: round $round $target: $line $cpu (req/s p50ms p99ms non2xx; proxy-core us/req user sys softirq; load-core idle %)" >&2
  done
done

python3 - "$ROUNDS" "${TARGETS[@]}" <<EOF
import statistics, sys
rounds = int(sys.argv[1]); targets = sys.argv[2:]
raw = {$(for k in "${!RESULTS[@]}"; do printf '"%s": "%s", ' "$k" "${RESULTS[$k]}"; done)}
res = {}
for t in targets:
    rows = [list(map(float, raw[f"{t},{r}"].split())) for r in range(1, rounds + 1)]
    # Median round by throughput: one disturbed round does not decide the result.
    rows.sort(key=lambda row: row[0])
    res[t] = rows[len(rows) // 2]
ng = res["nginx"]; gw = res["gateway"]; auth = res["gateway-jwt-ratelimit"]; floor = res["relay-floor"]
unsigned = res["gateway-jwt-unsigned"]
print()
cpu_us = lambda row: row[4] + row[5] + row[6]
print(f"{'target':<24}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}{'vs nginx':>10}"
      f"{'cpu us/req':>12}{'(usr/sys/irq)':>17}{'load idle':>11}")
for t in targets:
    rps, p50, p99, bad, usr, sys_, irq, idle = res[t]
    print(f"{t:<24}{rps:>10.0f}{p50:>9.3f}{p99:>9.3f}{bad:>9.0f}{rps / ng[0]:>9.2f}x"
          f"{cpu_us(res[t]):>12.2f}{f'{usr:.2f}/{sys_:.2f}/{irq:.2f}':>17}{idle:>10.0f}%")
print()
def verdict(ok): return "met" if ok else "MISSED"
r1 = gw[0] / ng[0]
print(f"plain gateway / nginx req/s: {r1:.2f}x (target >= 1.20x: {verdict(r1 >= 1.2)})")
# The proxy core's CPU per request compares the proxies even when neither saturates its core.
print(f"nginx / plain gateway CPU per request on the proxy core: {cpu_us(ng) / cpu_us(gw):.2f}x")
print(f"floor (byte relay, no HTTP work): {floor[0]:.0f} req/s = {floor[0] / ng[0]:.2f}x nginx, "
      f"{cpu_us(floor):.2f} us/req on the proxy core")
saturated = [t for t in targets if res[t][7] < 5]
if saturated:
    print(f"load side under 5% idle for: {', '.join(saturated)}: those figures are capped by wrk "
          f"and the upstream, not by the proxy; no proxy can be measured above the floor's "
          f"{floor[0] / ng[0]:.2f}x nginx here (give wrk, the upstream and the proxy a core each)")
print(f"plain gateway p99 {gw[2]:.3f} ms vs nginx p99 {ng[2]:.3f} ms (target <=: {verdict(gw[2] <= ng[2])})")
r2 = auth[0] / gw[0]
print(f"jwt+rules+ratelimit / plain gateway req/s: {r2:.2f}x (target >= 0.90x: {verdict(r2 >= 0.9)})")
# Signed and unsigned run one after the other in each round: the median of the rounds' ratios is
# steadier than the ratio of the medians when other work comes and goes on the machine.
def row(t, r): return list(map(float, raw[f"{t},{r}"].split()))
pairs = sorted(row("gateway-jwt-ratelimit", r)[0] / row("gateway-jwt-unsigned", r)[0]
               for r in range(1, rounds + 1))
r3 = pairs[len(pairs) // 2]
print(f"identity signature: signed / unsigned req/s: {r3:.3f}x, median of the rounds' ratios "
      f"(bound >= 0.97x: {verdict(r3 >= 0.97)}); medians {auth[0]:.0f} vs {unsigned[0]:.0f} req/s, "
      f"proxy core {cpu_us(auth):.2f} vs {cpu_us(unsigned):.2f} us/req (user {auth[4]:.2f} vs {unsigned[4]:.2f})")
# Tracing: each traced gateway against the plain one of the same round (same binary, tracing off).
for t, bound in (("gateway-traced-10", 0.95), ("gateway-traced-100", None)):
    ratios = sorted(row(t, r)[0] / row("gateway", r)[0] for r in range(1, rounds + 1))
    r4 = ratios[len(ratios) // 2]
    target = f" (bound >= 0.95x: {verdict(r4 >= bound)})" if bound else ""
    print(f"tracing {t.split('-')[-1]}%: traced / off req/s: {r4:.3f}x, median of the rounds' ratios"
          f"{target}; {res[t][0]:.0f} vs {gw[0]:.0f} req/s, proxy core {cpu_us(res[t]):.2f} vs "
          f"{cpu_us(gw):.2f} us/req")
EOF
