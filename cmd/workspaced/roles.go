package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// Roles says which parts of workspaced this process runs.
type Roles struct {
	API    bool // HTTP API
	Worker bool // command consumers
	Events bool // task-state subscriber (+ Docker event watcher)
	Pool   bool // warm-pool replenisher (one leader by Redis lease)
	GC     bool // idle/stuck/orphan GC and the reconciler (one leader by Redis lease)
}

func parseRoles(name string) (Roles, error) {
	switch name {
	case "serve":
		return Roles{API: true, Worker: true, Events: true, Pool: true, GC: true}, nil
	case "pool":
		return Roles{Pool: true}, nil
	case "gc":
		return Roles{GC: true}, nil
	case "api":
		return Roles{API: true}, nil
	case "worker":
		return Roles{Worker: true}, nil
	case "events":
		return Roles{Events: true}, nil
	}
	return Roles{}, fmt.Errorf("unknown role %q", name)
}

// healthcheck asks the local API's /health/live; for container HEALTHCHECKs
// of images without curl.
func healthcheck(ctx context.Context, addr string, stderr io.Writer) int {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		fmt.Fprintf(stderr, "healthcheck: HTTP_ADDR %q: %v\n", addr, err)
		return 1
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/health/live", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "healthcheck: %v\n", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "healthcheck: %s\n", resp.Status)
		return 1
	}
	return 0
}
