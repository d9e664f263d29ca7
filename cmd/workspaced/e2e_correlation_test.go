package main

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/workspaced/workspaced/events"
	"github.com/workspaced/workspaced/events/bus"
)

// TestCorrelationIDEndToEnd follows one X-Request-Id through the system
// (docs/bus.md, "Correlation IDs"): the API's log line, the
// workspace.requested's metadata and request_id, the provisioner's log
// lines, the binding, and the state subscriber's handling of the RUNNING
// event that made the workspace ready, which finds the ID through the
// binding (the event itself carries none).
func TestCorrelationIDEndToEnd(t *testing.T) {
	t.Parallel()
	s := startStack(t, nil)
	ctx := ctxFor(t, 2*time.Minute)
	// A second subscriber to the commands topic: the local bus hands each
	// subscriber a copy.
	spy := s.app.bus.Subscriber()
	t.Cleanup(func() { _ = spy.Close() })
	commands, err := spy.Subscribe(ctx, events.TopicWorkspaceRequested)
	if err != nil {
		t.Fatal(err)
	}

	const cid = "conv-corr"
	id := randomName("e2e-req-")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url+"/v1/conversations/"+cid+"/execute",
		strings.NewReader(`{"kind":"command","argv":["echo","hi"]}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("X-Request-Id", id)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Request-Id") != id {
		t.Fatalf("status %d, X-Request-Id %q, want 200 and %q", resp.StatusCode, resp.Header.Get("X-Request-Id"), id)
	}
	evs, err := collect(resp.Body)
	if err != nil || final(evs).Event != "done" {
		t.Fatalf("execute: %v %+v", err, evs)
	}

	// The command: metadata and body.
	select {
	case msg := <-commands:
		msg.Ack()
		cmd, err := events.DecodeRequested(msg.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if c := bus.CorrelationID(msg); c != id || cmd.RequestID != id || cmd.ConversationID != cid {
			t.Errorf("command correlation_id %q, request_id %q, conversation %q; want %q, %q, %q", c, cmd.RequestID, cmd.ConversationID, id, id, cid)
		}
	case <-ctx.Done():
		t.Fatal("no workspace.requested published")
	}
	// The binding keeps the request that asked for the workspace.
	if conv, err := s.store.Conversation(ctx, cid); err != nil || conv.RequestID != id {
		t.Errorf("conversation's request_id %q (%v), want %q", conv.RequestID, err, id)
	}

	// The log lines, each under correlation_id.
	s.logs.want(t, "the API's request", func(l logLine) bool {
		return l.msg == "workspace requested" && l.attrs["component"] == "api" && l.attrs["correlation_id"] == id
	})
	s.logs.want(t, "the worker's provisioning", func(l logLine) bool {
		return l.msg == "workspace provisioning" && l.attrs["component"] == "provisioner" && l.attrs["correlation_id"] == id
	})
	// Also when the event overtook the bind (the subscriber then reads the
	// conversation the runtime names).
	ready := s.logs.want(t, "the task-state event that made the workspace ready", func(l logLine) bool {
		return l.msg == "workspace ready" && l.attrs["component"] == "state_subscriber" && l.attrs["status"] == "RUNNING" &&
			l.attrs["conversation"] == cid && l.attrs["correlation_id"] == id
	})
	if ready.attrs["source"] != "workspaced.docker" {
		t.Errorf("ready line's source %q, want the Docker watcher's event", ready.attrs["source"])
	}
}

// logLine is one recorded log record: its message and attributes (those
// added with With included), as strings.
type logLine struct {
	msg   string
	attrs map[string]string
}

// logRecorder keeps every record logged through its handlers.
type logRecorder struct {
	mu    sync.Mutex
	lines []logLine
}

// handler returns an slog.Handler that records, then passes records to
// next.
func (r *logRecorder) handler(next slog.Handler) slog.Handler {
	return &recordingHandler{rec: r, next: next}
}

// want waits up to 10s for a line matching match and returns it.
func (r *logRecorder) want(t *testing.T, what string, match func(logLine) bool) logLine {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.mu.Lock()
		for _, l := range r.lines {
			if match(l) {
				r.mu.Unlock()
				return l
			}
		}
		r.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no log line for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type recordingHandler struct {
	rec   *logRecorder
	next  slog.Handler
	attrs []slog.Attr
}

func (h *recordingHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *recordingHandler) Handle(ctx context.Context, r slog.Record) error {
	l := logLine{msg: r.Message, attrs: map[string]string{}}
	for _, a := range h.attrs {
		l.attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		l.attrs[a.Key] = a.Value.String()
		return true
	})
	h.rec.mu.Lock()
	h.rec.lines = append(h.rec.lines, l)
	h.rec.mu.Unlock()
	return h.next.Handle(ctx, r)
}

func (h *recordingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &recordingHandler{rec: h.rec, next: h.next.WithAttrs(as), attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

// WithGroup keeps attributes flat: the tests match keys, not groups.
func (h *recordingHandler) WithGroup(name string) slog.Handler {
	return &recordingHandler{rec: h.rec, next: h.next.WithGroup(name), attrs: h.attrs}
}
