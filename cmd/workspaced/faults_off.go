//go:build !faultpoints

package main

// faultHook is nil in every ordinary build: production binaries have no
// crash points (see faults_on.go, build tag faultpoints).
func faultHook() func(point string) { return nil }
