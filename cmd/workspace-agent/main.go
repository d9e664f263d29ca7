// Command workspace-agent is the agent inside a workspace container: it
// serves the agent HTTP API (package agent) on a Unix socket or TCP and runs
// the Claude Code CLI for the backend.
//
// Environment (all optional):
//
//	WORKSPACE_LISTEN_MODE    uds (default) or tcp
//	WORKSPACE_SOCKET_PATH    Unix socket of uds mode (/var/run/ws/agent.sock)
//	WORKSPACE_LISTEN_PORT    TCP port of tcp mode (9000)
//	WORKSPACE_LISTEN_HOST    TCP host of tcp mode (all interfaces)
//	WORKSPACE_PROXY_SOCKET   when set, forward WORKSPACE_PROXY_LISTEN to this
//	                         Unix socket (Docker: /var/run/ws/proxy.sock)
//	WORKSPACE_PROXY_LISTEN   forwarder address (127.0.0.1:8080)
//	WORKSPACE_DIR            work directory (/workspace)
//	WORKSPACE_CLAUDE_PATH    Claude Code CLI (claude, looked up in PATH)
//	WORKSPACE_RUN_PATH       PATH of runs (/usr/local/bin:/usr/bin:/bin)
//	WORKSPACE_AWS_REGION     when set, passed to runs as AWS_REGION (Claude
//	                         Code on Bedrock needs a region; not a secret)
//	WORKSPACE_KILL_GRACE     SIGTERM→SIGKILL grace, Go duration (5s)
//	WORKSPACE_RUN_TIMEOUT    default run timeout, Go duration (0: none)
//	WORKSPACE_MAX_TAR_BYTES  PUT /files size limit in bytes (1 GiB)
//	WORKSPACE_LOG_LEVEL      debug, info (default), warn, error
//
// None of this environment reaches a run: runs get a fixed environment
// (package agent), plus AWS_REGION when WORKSPACE_AWS_REGION is set.
// SIGTERM or SIGINT shuts the agent down (the running process group is
// killed) and it exits 0.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/workspaced/workspaced/agent"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel(os.Getenv("WORKSPACE_LOG_LEVEL"))}))
	if err := run(log); err != nil {
		log.Error("workspace agent failed", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger) error {
	opts, err := optionsFromEnv(os.Getenv)
	if err != nil {
		return err
	}
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

// optionsFromEnv parses the environment documented above.
func optionsFromEnv(getenv func(string) string) (agent.Options, error) {
	o := agent.Options{
		ListenMode:  getenv("WORKSPACE_LISTEN_MODE"),
		SocketPath:  getenv("WORKSPACE_SOCKET_PATH"),
		ProxySocket: getenv("WORKSPACE_PROXY_SOCKET"),
		ProxyListen: getenv("WORKSPACE_PROXY_LISTEN"),
		WorkDir:     getenv("WORKSPACE_DIR"),
		ClaudePath:  getenv("WORKSPACE_CLAUDE_PATH"),
		Path:        getenv("WORKSPACE_RUN_PATH"),
	}
	if port := getenv("WORKSPACE_LISTEN_PORT"); port != "" || getenv("WORKSPACE_LISTEN_HOST") != "" {
		if port == "" {
			port = "9000"
		}
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			return o, fmt.Errorf("parse WORKSPACE_LISTEN_PORT %q: not a port", port)
		}
		o.TCPAddr = getenv("WORKSPACE_LISTEN_HOST") + ":" + port
	}
	if region := getenv("WORKSPACE_AWS_REGION"); region != "" {
		o.ExtraEnv = append(o.ExtraEnv, "AWS_REGION="+region)
	}
	var err error
	if o.KillGrace, err = duration(getenv, "WORKSPACE_KILL_GRACE"); err != nil {
		return o, err
	}
	if o.DefaultTimeout, err = duration(getenv, "WORKSPACE_RUN_TIMEOUT"); err != nil {
		return o, err
	}
	if v := getenv("WORKSPACE_MAX_TAR_BYTES"); v != "" {
		if o.MaxTarBytes, err = strconv.ParseInt(v, 10, 64); err != nil || o.MaxTarBytes <= 0 {
			return o, fmt.Errorf("parse WORKSPACE_MAX_TAR_BYTES %q: not a positive integer", v)
		}
	}
	return o, nil
}

func duration(getenv func(string) string, name string) (time.Duration, error) {
	v := getenv(name)
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("parse %s %q: not a duration", name, v)
	}
	return d, nil
}

func logLevel(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo
	}
	return l
}
