// The pause process of every pod sandbox on the test node: it holds the pod's namespaces open,
// reaps the zombies a pod's processes leave behind (it is PID 1 when the pod shares its PID
// namespace) and exits cleanly on SIGINT or SIGTERM. Built static (CGO_ENABLED=0) by
// scripts/install-node.sh and imported as registry.k8s.io/pause, so nothing is ever pulled.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if os.Getpid() != 1 {
		os.Stderr.WriteString("pause: warning: not PID 1\n")
	}
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var status syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
