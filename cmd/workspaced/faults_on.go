//go:build faultpoints

package main

import (
	"os"
	"syscall"
)

// faultHook, in binaries built with -tags faultpoints (the crash tests
// only), kills the process with SIGKILL the first time provisioning
// passes the point named by WORKSPACED_CRASH_AT: "locked", "created",
// "started", "running" or "claimed".
func faultHook() func(point string) {
	at := os.Getenv("WORKSPACED_CRASH_AT")
	if at == "" {
		return nil
	}
	return func(point string) {
		if point == at {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // never returns: the signal is on its way
		}
	}
}
