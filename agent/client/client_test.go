package client_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/workspaced/workspaced/agent/api"
	"github.com/workspaced/workspaced/agent/client"
)

func TestErrorMapping(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		status  int
		body    string
		wantMsg string
		busy    bool
	}{
		{"busy", 409, `{"error":"agent busy"}`, "", true},
		{"bad request", 400, `{"error":"bad request: prompt is required"}`, "bad request: prompt is required", false},
		{"plain text 502", 502, "bad gateway\n", "bad gateway", false},
		{"shutting down", 503, `{"error":"agent shutting down"}`, "agent shutting down", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			c := client.NewWithBaseURL(client.TCPTransport(), srv.URL)
			_, err := c.Execute(context.Background(), api.ExecuteRequest{Prompt: "x"})
			if tt.busy {
				if !errors.Is(err, client.ErrBusy) {
					t.Fatalf("err = %v, want ErrBusy", err)
				}
				return
			}
			var apiErr *client.APIError
			if !errors.As(err, &apiErr) || apiErr.Status != tt.status || apiErr.Message != tt.wantMsg {
				t.Fatalf("err = %#v, want APIError{%d, %q}", err, tt.status, tt.wantMsg)
			}
		})
	}
}

func TestStreamBodyRelaysRawBytes(t *testing.T) {
	t.Parallel()
	const stream = "id: 1\nevent: message\ndata: {\"type\":\"system\"}\n\nid: 2\nevent: done\ndata: {\"exit_code\":0,\"duration_ms\":1}\n\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, stream)
	}))
	defer srv.Close()
	c := client.NewWithBaseURL(client.TCPTransport(), srv.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := c.Execute(ctx, api.ExecuteRequest{Prompt: "x"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	b, err := io.ReadAll(st.Body())
	if err != nil || string(b) != stream {
		t.Fatalf("Body = %q, %v", b, err)
	}
}

func TestStreamDone(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "event: stdout\ndata: hi\n\nevent: done\ndata: {\"exit_code\":3,\"duration_ms\":7,\"reason\":\"timeout\"}\n\n")
	}))
	defer srv.Close()
	st, err := client.NewWithBaseURL(client.TCPTransport(), srv.URL).Execute(context.Background(), api.ExecuteRequest{Prompt: "x"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var names []string
	for {
		ev, err := st.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, ev.Event)
	}
	if strings.Join(names, ",") != "stdout,done" {
		t.Errorf("events %v", names)
	}
	if d := st.Done(); d == nil || d.ExitCode != 3 || d.Reason != "timeout" {
		t.Errorf("Done = %+v", d)
	}
}

func TestExecuteRejectsNonStream(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, "{}")
	}))
	defer srv.Close()
	_, err := client.NewWithBaseURL(client.TCPTransport(), srv.URL).Execute(context.Background(), api.ExecuteRequest{Prompt: "x"})
	if err == nil {
		t.Fatal("a JSON answer was accepted as an event stream")
	}
}
