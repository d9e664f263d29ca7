package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// apiStub serves one canned SSE stream for execute and records the request,
// so the tests exercise wsctl's real HTTP and SSE handling.
func apiStub(t *testing.T, stream string, got *executeRequest) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer test-key-0123456789" {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":{"code":"unauthorized","message":"missing or invalid API key"}}`)
			return
		}
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/v1/conversations/demo/execute":
			if err := json.NewDecoder(r.Body).Decode(got); err != nil {
				t.Errorf("decode body: %v", err)
			}
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, stream)
		case r.Method == http.MethodGet && r.URL.Path == "/v1/conversations/demo":
			io.WriteString(w, `{"id":"demo","state":"ready"}`)
		default:
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":{"code":"not_found","message":"conversation not found"}}`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestExec(t *testing.T) {
	t.Parallel()
	const status = "event: status\ndata: {\"state\":\"queued\"}\n\nevent: status\ndata: {\"state\":\"ready\",\"workspace_id\":\"abc\"}\n\n"
	tests := []struct {
		name       string
		args       []string
		stream     string
		wantCode   int
		wantStdout string
		wantStderr string
		wantReq    executeRequest
	}{
		{
			name:       "command with exit code",
			args:       []string{"exec", "demo", "--", "sh", "-c", "echo hi; exit 3"},
			stream:     status + "event: stdout\ndata: hi\n\n: ping\n\nevent: done\ndata: {\"exit_code\":3,\"duration_ms\":5}\n\n",
			wantCode:   3,
			wantStdout: "hi\n",
			wantStderr: "· exit 3",
			wantReq:    executeRequest{Kind: "command", Argv: []string{"sh", "-c", "echo hi; exit 3"}},
		},
		{
			name:       "claude prompt",
			args:       []string{"exec", "demo", "say", "hello"},
			stream:     status + "event: message\ndata: {\"type\":\"assistant\",\"message\":{\"content\":[{\"type\":\"text\",\"text\":\"Hello!\"}]}}\n\nevent: done\ndata: {\"exit_code\":0}\n\n",
			wantCode:   0,
			wantStdout: "Hello!\n",
			wantStderr: "· ready (workspace abc)",
			wantReq:    executeRequest{Kind: "claude", Prompt: "say hello"},
		},
		{
			name:       "error event",
			args:       []string{"exec", "demo", "--", "true"},
			stream:     status + "event: error\ndata: {\"error\":{\"code\":\"provisioning_timeout\",\"message\":\"no workspace\"}}\n\n",
			wantCode:   1,
			wantStderr: "error: no workspace (provisioning_timeout)",
			wantReq:    executeRequest{Kind: "command", Argv: []string{"true"}},
		},
		{
			name:       "stream cut before final event",
			args:       []string{"exec", "demo", "--", "true"},
			stream:     status,
			wantCode:   1,
			wantStderr: "without a final event",
			wantReq:    executeRequest{Kind: "command", Argv: []string{"true"}},
		},
		{
			name:       "json output",
			args:       []string{"exec", "--json", "demo", "--", "echo", "x"},
			stream:     "event: stdout\ndata: x\n\nevent: done\ndata: {\"exit_code\":0}\n\n",
			wantCode:   0,
			wantStdout: `{"event":"stdout","data":"x"}` + "\n" + `{"event":"done","data":{"exit_code":0}}` + "\n",
			wantReq:    executeRequest{Kind: "command", Argv: []string{"echo", "x"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got executeRequest
			srv := apiStub(t, tt.stream, &got)
			var stdout, stderr bytes.Buffer
			env := map[string]string{"WORKSPACED_URL": srv.URL, "WORKSPACED_API_KEY": "test-key-0123456789"}
			code := run(context.Background(), tt.args, func(k string) string { return env[k] }, &stdout, &stderr)
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tt.wantCode, stderr.String())
			}
			if tt.wantStdout != "" && stdout.String() != tt.wantStdout {
				t.Errorf("stdout %q, want %q", stdout.String(), tt.wantStdout)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr %q does not contain %q", stderr.String(), tt.wantStderr)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.wantReq) {
				t.Errorf("request %+v, want %+v", got, tt.wantReq)
			}
		})
	}
}

func TestUsageAndErrors(t *testing.T) {
	t.Parallel()
	var dummy executeRequest
	srv := apiStub(t, "", &dummy)
	tests := []struct {
		name       string
		args       []string
		key        string
		wantCode   int
		wantStderr string
	}{
		{"no command", nil, "test-key-0123456789", exitUsage, "usage"},
		{"unknown command", []string{"frobnicate"}, "test-key-0123456789", exitUsage, "unknown command"},
		{"no key", []string{"status", "demo"}, "", exitUsage, "no API key"},
		{"wrong key", []string{"status", "demo"}, "wrong-key-0123456789", exitFailed, "401 Unauthorized: missing or invalid API key (unauthorized)"},
		{"not found", []string{"status", "other"}, "test-key-0123456789", exitFailed, "conversation not found"},
		{"exec without argv", []string{"exec", "demo"}, "test-key-0123456789", exitUsage, "usage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			env := map[string]string{"WORKSPACED_URL": srv.URL, "WORKSPACED_API_KEY": tt.key}
			code := run(context.Background(), tt.args, func(k string) string { return env[k] }, &stdout, &stderr)
			if code != tt.wantCode || !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("code %d stderr %q; want %d containing %q", code, stderr.String(), tt.wantCode, tt.wantStderr)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	t.Parallel()
	var dummy executeRequest
	srv := apiStub(t, "", &dummy)
	var stdout, stderr bytes.Buffer
	env := map[string]string{"WORKSPACED_API_KEY": "test-key-0123456789"}
	code := run(context.Background(), []string{"--url", srv.URL, "status", "demo"}, func(k string) string { return env[k] }, &stdout, &stderr)
	if code != 0 || !strings.Contains(stdout.String(), `"state": "ready"`) {
		t.Fatalf("code %d stdout %q stderr %q", code, stdout.String(), stderr.String())
	}
}
