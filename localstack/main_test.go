// Package localstack_test runs the LocalStack init scripts, with Debian's
// AWS CLI, against the in-process AWS emulator (kumo) and checks that what
// they create is what Terraform creates and what the SQS bus needs.
package localstack_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
)

// TestMain re-executes the test binary with KUMO_PORT set when it is not:
// kumo's EventBridge reads KUMO_PORT at package init to know where to deliver
// SQS targets, and the emulator itself listens on a random port, so the
// tests forward that fixed port to it (see emulator).
func TestMain(m *testing.M) {
	if os.Getenv("KUMO_PORT") != "" {
		os.Exit(m.Run())
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "pick a port for KUMO_PORT:", err)
		os.Exit(1)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	cmd := exec.Command(os.Args[0], os.Args[1:]...)
	cmd.Env = append(os.Environ(), fmt.Sprintf("KUMO_PORT=%d", port))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			os.Exit(ee.ExitCode())
		}
		fmt.Fprintln(os.Stderr, "re-exec with KUMO_PORT:", err)
		os.Exit(1)
	}
	os.Exit(0)
}
