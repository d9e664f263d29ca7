package handlers

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/workspaced/workspaced/sse"
)

// Final error codes specific to streams (see errors.go for the rest).
const (
	codeCancelled = "cancelled"
	codeBusy      = "workspace_busy"
	codeBroken    = "workspace_stream_broken"
)

// streamError is a failure after the stream began: it becomes the final
// "error" event.
type streamError struct {
	code string
	msg  string
}

// stream is one execute response: an SSE writer with increasing event ids
// and a heartbeat goroutine. Events are written by the handler goroutine;
// heartbeats concurrently (sse.Writer serialises them).
type stream struct {
	w      *sse.Writer
	seq    int64
	stop   chan struct{}
	done   chan struct{}
	mu     sync.Mutex
	onBeat func() // renews the stream lease while relaying
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

// send writes one event with the next id.
func (st *stream) send(event, data string) error {
	st.seq++
	return st.w.WriteEvent(sse.Event{ID: strconv.FormatInt(st.seq, 10), Event: event, Data: data})
}

// sendJSON writes one event whose data is v as JSON.
func (st *stream) sendJSON(event string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return st.send(event, string(b))
}

// statusEvent is the data of a "status" event.
type statusEvent struct {
	State       string `json:"state"`
	WorkspaceID string `json:"workspace_id,omitempty"`
}

// fail writes the final "error" event and returns its code.
func (st *stream) fail(e *streamError) string {
	_ = st.sendJSON("error", errorBody{errorDetail{e.code, e.msg}})
	return e.code
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
