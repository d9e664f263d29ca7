package handlers

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/workspaced/workspaced/sse"
)

// Final error codes specific to streams (see errors.go for the rest).
const (
	codeCancelled = "cancelled"
	codeBusy      = "workspace_busy"
)

// streamError is a failure after the stream began: it becomes the final
// "error" event.
type streamError struct {
	code string
	msg  string
}

// stream is one client's event stream (an execute response, a follower of
// a run): an SSE writer and a heartbeat goroutine. Events are written by
// one goroutine at a time; heartbeats concurrently (sse.Writer serialises
// them).
type stream struct {
	w      *sse.Writer
	stop   chan struct{}
	done   chan struct{}
	mu     sync.Mutex
	onBeat func() // called every heartbeat (a follower marks its run seen)
	gauge  interface{ Dec() }
}

// openStream commits the response as an event stream and starts heartbeats.
func (s *Server) openStream(c echo.Context) *stream {
	resp := c.Response()
	sse.SetHeaders(resp.Header())
	resp.WriteHeader(http.StatusOK)
	st := &stream{w: sse.NewWriter(resp.Writer), stop: make(chan struct{}), done: make(chan struct{}), gauge: s.metrics.streams}
	_ = st.w.WriteComment("stream open")
	s.metrics.streams.Inc()
	go st.heartbeat(s.opts.Heartbeat)
	return st
}

func (st *stream) heartbeat(every time.Duration) {
	defer close(st.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-st.stop:
			return
		case <-t.C:
			if st.w.WriteComment("ping") != nil {
				return // the client is gone; the handler notices on its next write
			}
			st.mu.Lock()
			beat := st.onBeat
			st.mu.Unlock()
			if beat != nil {
				beat()
			}
		}
	}
}

// setBeat installs (or, with nil, removes) the per-heartbeat hook.
func (st *stream) setBeat(f func()) {
	st.mu.Lock()
	st.onBeat = f
	st.mu.Unlock()
}

// close stops the heartbeats and waits for them: after it returns nothing
// writes to the response again.
func (st *stream) close() {
	close(st.stop)
	<-st.done
	st.gauge.Dec()
}

// write writes one event and flushes it.
func (st *stream) write(ev sse.Event) error { return st.w.WriteEvent(ev) }

// buffer writes one relayed event unflushed: the relay flushes when the
// agent's stream has nothing more buffered (client.Stream.BeforeRead) and
// with its final event.
func (st *stream) buffer(ev sse.Event) error { return st.w.BufferEvent(ev) }

// flush flushes what buffer wrote.
func (st *stream) flush() error { return st.w.Flush() }

// retry ends the stream with a reconnection hint (an SSE "retry:" field
// and no event): the client reconnects, with Last-Event-ID, to a replica
// that relays the run.
func (st *stream) retry(wait time.Duration) error {
	_ = st.w.WriteComment("relay moving to another replica; reconnect with Last-Event-ID")
	return st.w.WriteRetry(int(wait.Milliseconds()))
}

// sendJSON writes one event without id whose data is v as JSON (a
// follower's final error about the log itself, not an event of the run).
func (st *stream) sendJSON(event string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return st.w.WriteEvent(sse.Event{Event: event, Data: string(b)})
}

// eventSink receives the status events of a wait (a run's driver).
type eventSink interface {
	sendJSON(event string, v any) error
}

// statusEvent is the data of a "status" event.
type statusEvent struct {
	State       string `json:"state"`
	WorkspaceID string `json:"workspace_id,omitempty"`
	// Checkpoint names the saved checkpoint restored into the workspace
	// (state "restored").
	Checkpoint string `json:"checkpoint,omitempty"`
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
