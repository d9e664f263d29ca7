package handlers

import (
	"bytes"
	"encoding/json"
	"io"
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
// a run): an SSE writer and heartbeats. Events are written by one
// goroutine at a time; heartbeats concurrently (sse.Writer serialises
// them). A heartbeat is a timer's function, not a goroutine waiting on a
// ticker: a stream is open for its run's life (D38).
type stream struct {
	w     *sse.Writer
	every time.Duration
	gauge interface{ Dec() }

	mu     sync.Mutex
	onBeat func() // called every heartbeat (a follower marks its run seen)

	beating sync.Mutex // held by a heartbeat; guards beat and closed
	beat    *time.Timer
	closed  bool
}

// openStream commits the response as an event stream and starts heartbeats.
func (s *Server) openStream(c echo.Context) *stream {
	resp := c.Response()
	sse.SetHeaders(resp.Header())
	resp.WriteHeader(http.StatusOK)
	st := s.newStream(resp.Writer)
	_ = st.w.WriteComment("stream open")
	return st
}

// newStream is a stream of events written to w, with heartbeats, counted
// in the streams gauge.
func (s *Server) newStream(w io.Writer) *stream {
	s.metrics.streams.Inc()
	return startStream(w, s.opts.Heartbeat, s.metrics.streams)
}

// startStream is a stream of events written to w with a heartbeat every
// every; close decrements gauge.
func startStream(w io.Writer, every time.Duration, gauge interface{ Dec() }) *stream {
	st := &stream{w: sse.NewWriter(w), every: every, gauge: gauge}
	st.beating.Lock()
	st.beat = time.AfterFunc(st.every, st.heartbeat)
	st.beating.Unlock()
	return st
}

// heartbeat writes a "ping" comment and calls the hook, then sets the
// next one; a client that is gone stops them (the handler notices on its
// next write).
func (st *stream) heartbeat() {
	st.beating.Lock()
	defer st.beating.Unlock()
	if st.closed {
		return
	}
	if st.w.WriteComment("ping") != nil {
		return
	}
	st.mu.Lock()
	beat := st.onBeat
	st.mu.Unlock()
	if beat != nil {
		beat()
	}
	st.beat.Reset(st.every)
}

// setBeat installs (or, with nil, removes) the per-heartbeat hook.
func (st *stream) setBeat(f func()) {
	st.mu.Lock()
	st.onBeat = f
	st.mu.Unlock()
}

// close stops the heartbeats and waits for one under way: after it
// returns nothing writes to the response again.
func (st *stream) close() {
	st.beating.Lock()
	st.closed = true
	st.beat.Stop()
	st.beating.Unlock()
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
