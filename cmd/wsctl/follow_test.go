package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// The execute stream breaks mid-run; wsctl reconnects (through a 503 and
// a stream that replays from the start) and prints every line once.
func TestExecReconnects(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var lastIDs []string
	gets := 0
	ev := func(id, name, data string) string {
		return "id: " + id + "\nevent: " + name + "\ndata: " + data + "\n\n"
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/v1/conversations/demo/execute":
			w.Header().Set(runIDHeader, "run-1")
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, ev("1", "run", `{"run_id":"run-1","conversation_id":"demo"}`)+ev("2", "stdout", "one")+ev("3", "stdout", "two")+"retry: 10\n\n")
		case r.Method == http.MethodGet && r.URL.Path == "/v1/conversations/demo/runs/run-1/events":
			mu.Lock()
			gets++
			n := gets
			lastIDs = append(lastIDs, r.Header.Get("Last-Event-ID"))
			mu.Unlock()
			if n == 1 {
				w.WriteHeader(http.StatusServiceUnavailable)
				io.WriteString(w, `{"error":{"code":"unavailable","message":"try again"}}`)
				return
			}
			w.Header().Set("Content-Type", "text/event-stream")
			if n == 2 { // a replay from an earlier id, then another break
				io.WriteString(w, ev("2", "stdout", "one")+ev("3", "stdout", "two")+ev("4", "stdout", "three"))
				return
			}
			io.WriteString(w, ev("5", "stdout", "four")+ev("6", "done", `{"exit_code":5}`))
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(srv.Close)
	var stdout, stderr bytes.Buffer
	env := map[string]string{"WORKSPACED_URL": srv.URL, "WORKSPACED_API_KEY": "test-key-0123456789"}
	code := run(context.Background(), []string{"exec", "demo", "--", "true"}, func(k string) string { return env[k] }, &stdout, &stderr)
	if code != 5 {
		t.Fatalf("exit code %d, want 5 (stderr %s)", code, stderr.String())
	}
	if stdout.String() != "one\ntwo\nthree\nfour\n" {
		t.Errorf("stdout %q: every line once, in order", stdout.String())
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(lastIDs, ",") != "3,3,4" {
		t.Errorf("Last-Event-ID sent %v, want 3,3,4", lastIDs)
	}
}

func TestAttachAndRuns(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/conversations/demo/runs":
			io.WriteString(w, `{"runs":[{"run_id":"r2","state":"running"},{"run_id":"r1","state":"done","exit_code":0}]}`)
		case "/v1/conversations/demo/runs/r2/events":
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "id: 7\nevent: stdout\ndata: hi\n\nid: 8\nevent: done\ndata: {\"exit_code\":0}\n\n")
		case "/v1/conversations/idle/runs":
			io.WriteString(w, `{"runs":[]}`)
		default:
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":{"code":"not_found","message":"run not found"}}`)
		}
	}))
	t.Cleanup(srv.Close)
	tests := []struct {
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{[]string{"attach", "demo"}, 0, "hi\n", "· exit 0"},
		{[]string{"attach", "demo", "r2"}, 0, "hi\n", ""},
		{[]string{"attach", "demo", "nope"}, 1, "", "run not found"},
		{[]string{"attach", "idle"}, 1, "", "no active run"},
		{[]string{"runs", "demo"}, 0, `"run_id": "r2"`, ""},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		env := map[string]string{"WORKSPACED_URL": srv.URL, "WORKSPACED_API_KEY": "test-key-0123456789"}
		code := run(context.Background(), tt.args, func(k string) string { return env[k] }, &stdout, &stderr)
		if code != tt.wantCode || !strings.Contains(stdout.String(), tt.wantStdout) || !strings.Contains(stderr.String(), tt.wantStderr) {
			t.Errorf("%v: code %d stdout %q stderr %q", tt.args, code, stdout.String(), stderr.String())
		}
	}
}
