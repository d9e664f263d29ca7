// Command workspace-agent is the agent inside a workspace container: it
// serves the agent HTTP API (package agent) on a Unix socket or TCP and runs
// the Claude Code CLI for the backend.
//
// Its environment is agent.Config (all optional; every variable, with its
// default, is in docs/configuration.md), parsed with envconf like every
// binary's; a bad value stops the agent with an error naming it.
//
// None of this environment reaches a run: runs get a fixed environment
// (package agent), plus AWS_REGION when WORKSPACE_AWS_REGION is set.
// SIGTERM or SIGINT shuts the agent down (the running process group is
// killed) and it exits 0.
package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/workspaced/workspaced/agent"
	"github.com/workspaced/workspaced/config/envconf"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	cfg, err := agent.LoadConfig(envconf.Environ(os.Environ()))
	if err != nil {
		slog.New(slog.NewJSONHandler(os.Stderr, nil)).Error("workspace agent configuration", "err", err)
		os.Exit(1)
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	if err := run(cfg, log); err != nil {
		log.Error("workspace agent failed", "err", err)
		os.Exit(1)
	}
}

func run(cfg agent.Config, log *slog.Logger) error {
	opts := cfg.Options()
	opts.Logger = log
	opts.Version = version
	opts.Subreaper = true
	srv, err := agent.New(opts)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return srv.Run(ctx)
}
