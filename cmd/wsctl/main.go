// Command wsctl is a command-line client for people: run a prompt or a
// command in a conversation's workspace and watch the stream, look at a
// conversation, release it, look at the warm pool.
//
//	wsctl exec demo -- sh -c 'echo hello; id'
//	wsctl exec demo "Summarise the repository"
//	wsctl runs demo
//	wsctl attach demo [run]
//	wsctl status demo
//	wsctl release demo
//	wsctl pool
//	wsctl selftest demo
//
// It reads WORKSPACED_URL (default http://127.0.0.1:8000) and
// WORKSPACED_API_KEY, or the --url and --key flags. The exit code of exec
// is the run's exit code (1 when the stream ends with an error); a stream
// that breaks is resumed (Last-Event-ID) with backoff, no event printed
// twice; selftest
// exits 1 when a check failed or the self-test could not run.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// usage is printed for -h and for a wrong command line.
const usage = `usage: wsctl [--url URL] [--key KEY] <command> [args]

commands:
  exec [--json] [--timeout S] <conversation> <prompt...>   run Claude Code on a prompt
  exec [--json] [--timeout S] <conversation> -- <argv...>  run a command (no shell unless you ask)
  attach  <conversation> [run]                             follow a run (default: the newest active one)
  runs    <conversation>                                   list the conversation's recent runs
  status  <conversation>                                   show the conversation's workspace
  release <conversation>                                   release the workspace (files saved)
  pool                                                     show the warm pool
  selftest [--json] [--allowed-host H:P] [--no-fork-bomb] <conversation>
                                                           check the workspace's isolation from inside

environment: WORKSPACED_URL (default http://127.0.0.1:8000), WORKSPACED_API_KEY
`

// exit codes besides a run's own.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

func errorf(stderr interface{ Write([]byte) (int, error) }, format string, a ...any) int {
	fmt.Fprintf(stderr, "wsctl: "+format+"\n", a...)
	return exitFailed
}
