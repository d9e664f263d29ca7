// Command workspaced is the backend: the HTTP API, the command workers, the
// task-state subscriber, the warm pool and GC. `workspaced serve` runs every
// role in one process (the local default, and the only choice with the
// in-process gochannel bus); on ECS the roles can run apart:
//
//	workspaced serve        every role
//	workspaced api          HTTP API (publishes commands, relays streams)
//	workspaced worker       workspace.requested / workspace.released consumers
//	workspaced events       task-state subscriber (and, on Docker, the engine event watcher)
//	workspaced pool         warm-pool replenisher (one leader at a time, Redis lease)
//	workspaced gc           idle TTL, stuck provisioning, orphan reaper, reconciler (one leader)
//	workspaced healthcheck  exit 0 if the local API answers /health/live (for HEALTHCHECK)
//
// Configuration comes from the environment only: see docs/configuration.md.
// main wires; the work is in the packages.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/workspaced/workspaced/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `usage: workspaced <serve|api|worker|events|pool|gc|healthcheck>
configuration: environment variables, see docs/configuration.md
`

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cfg, err := config.Load()
	if err != nil {
		fmt.Fprintf(stderr, "workspaced: %v\n", err)
		return 2
	}
	if args[0] == "healthcheck" {
		return healthcheck(ctx, cfg.HTTP.Addr, stderr)
	}
	roles, err := parseRoles(args[0])
	if err != nil {
		fmt.Fprintf(stderr, "workspaced: %v\n%s", err, usage)
		return 2
	}
	log := newLogger(cfg.Log, stderr)
	app, err := NewApp(ctx, cfg, roles, log)
	if err != nil {
		log.Error("start failed", "err", err)
		return 1
	}
	if err := app.Run(ctx); err != nil {
		log.Error("stopped with error", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	level, _ := config.ParseLevel(c.Level) // validated by config.Load
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
