package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/workspaced/workspaced/selftest"
)

// runtimeEnv is what the self-test knows about where it runs.
type runtimeEnv struct {
	runtime  string
	evidence string
	// agentEnv is the agent's environment (PID 1), as the workspace user
	// can read it; nil when unreadable.
	agentEnv map[string]string
	// agentSocket is the agent's Unix socket (Docker), agentAddr its TCP
	// address (ECS).
	agentSocket string
	agentAddr   string
}

// detect names the runtime: the -runtime flag, else the agent's listen mode
// (uds on Docker, tcp on ECS), else the ECS agent's metadata variable.
func detect(cfg config) runtimeEnv {
	env := runtimeEnv{runtime: selftest.RuntimeUnknown}
	if m, err := readEnviron("/proc/1/environ"); err == nil {
		env.agentEnv = m
	}
	mode := env.agentEnv["WORKSPACE_LISTEN_MODE"]
	switch {
	case cfg.runtime != "":
		env.runtime, env.evidence = cfg.runtime, "-runtime flag"
	case mode == "uds":
		env.runtime, env.evidence = selftest.RuntimeDocker, "agent listens on a Unix socket (WORKSPACE_LISTEN_MODE=uds)"
	case mode == "tcp":
		env.runtime, env.evidence = selftest.RuntimeECS, "agent listens on TCP (WORKSPACE_LISTEN_MODE=tcp)"
	case env.agentEnv["ECS_CONTAINER_METADATA_URI_V4"] != "":
		env.runtime, env.evidence = selftest.RuntimeECS, "ECS_CONTAINER_METADATA_URI_V4 in the agent's environment"
	case env.agentEnv == nil:
		env.evidence = "the agent's environment (/proc/1/environ) is unreadable"
	default:
		env.evidence = "the agent's environment names no listen mode"
	}
	env.agentSocket = "/var/run/ws/agent.sock"
	if p := env.agentEnv["WORKSPACE_SOCKET_PATH"]; p != "" {
		env.agentSocket = p
	}
	port := env.agentEnv["WORKSPACE_LISTEN_PORT"]
	if port == "" {
		port = "9000"
	}
	env.agentAddr = "127.0.0.1:" + port
	return env
}

// readEnviron parses a /proc/<pid>/environ file.
func readEnviron(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	m := map[string]string{}
	for _, kv := range bytes.Split(b, []byte{0}) {
		if k, v, ok := strings.Cut(string(kv), "="); ok && k != "" {
			m[k] = v
		}
	}
	return m, nil
}
