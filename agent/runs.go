package agent

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/workspaced/workspaced/agent/api"
	"github.com/workspaced/workspaced/sse"
)

// setRun makes rl the run GET /runs/{id}/events and POST /runs/{id}/cancel
// answer for; the previous run's log is dropped.
func (s *Server) setRun(rl *runLog) {
	s.mu.Lock()
	s.lastRun = rl
	s.mu.Unlock()
}

// namedRun returns the current (or last) run if its id is id.
func (s *Server) namedRun(id string) (*runLog, error) {
	if !api.ValidRunID(id) {
		return nil, fmt.Errorf("%w: %.70q is not a run id", api.ErrBadRequest, id)
	}
	s.mu.Lock()
	rl := s.lastRun
	s.mu.Unlock()
	if rl == nil || rl.id != id {
		return nil, fmt.Errorf("%w: run %s", api.ErrNotFound, id)
	}
	return rl, nil
}

// handleRunEvents serves GET /runs/{id}/events?after=N: the run's events
// after number N (0: all), then the live ones until the final event. The
// reader going away does not touch the run. 410 when events after N were
// dropped from the bounded log; 404 when the run is not the agent's
// current or last one.
func (s *Server) handleRunEvents(w http.ResponseWriter, r *http.Request) {
	rl, err := s.namedRun(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	after, err := api.ParseEventID(r.URL.Query().Get("after"))
	if err != nil {
		writeError(w, fmt.Errorf("%w: after: %w", api.ErrBadRequest, err))
		return
	}
	if after > rl.last() {
		writeError(w, fmt.Errorf("%w: after %d is beyond the run's last event %d", api.ErrBadRequest, after, rl.last()))
		return
	}
	if _, _, _, err := rl.since(after); err != nil {
		writeError(w, fmt.Errorf("%w: %w", api.ErrGone, err))
		return
	}
	s.follow(w, r, rl, after, func() {})
}

// handleRunCancel serves POST /runs/{id}/cancel: the run's process group is
// killed (SIGTERM, SIGKILL after the grace) and its final event says
// "cancelled". Cancelling a run that ended is a no-op. 202 either way.
func (s *Server) handleRunCancel(w http.ResponseWriter, r *http.Request) {
	rl, err := s.namedRun(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	rl.cancel()
	writeJSON(w, http.StatusAccepted, map[string]string{"run": rl.id})
}

// follow streams rl's events after number after to w until the final one,
// with heartbeat comments while the run is quiet. onGone is called when
// the reader goes away (or stops reading) before the end.
func (s *Server) follow(w http.ResponseWriter, r *http.Request, rl *runLog, after int64, onGone func()) {
	sse.SetHeaders(w.Header())
	w.WriteHeader(http.StatusOK)
	ew := &eventWriter{w: sse.NewWriter(w), rc: http.NewResponseController(w), timeout: s.opts.WriteTimeout}
	if ew.comment("run") != nil { // flush headers at once: the client sees the stream start
		onGone()
		return
	}
	var beat <-chan time.Time
	if s.opts.Heartbeat > 0 {
		t := time.NewTicker(s.opts.Heartbeat)
		defer t.Stop()
		beat = t.C
	}
	for {
		evs, ended, changed, err := rl.since(after)
		if errors.Is(err, errTrimmed) {
			// This reader fell behind the bounded log: its stream cannot
			// continue without a gap, so it ends without a final event.
			s.log.Warn("run log reader fell behind", "run", rl.id, "after", after)
			onGone()
			return
		}
		// Coalesce: the events the log had are written unflushed and
		// flushed together, once per batch (never once per event of a
		// fast writer, never holding one back while the run is quiet).
		for _, ev := range evs {
			if ew.buffer(ev) != nil {
				onGone()
				return
			}
			after++
		}
		if len(evs) > 0 && ew.flush() != nil {
			onGone()
			return
		}
		if ended && len(evs) == 0 {
			return
		}
		if len(evs) > 0 {
			continue
		}
		select {
		case <-changed:
		case <-beat:
			if ew.comment("heartbeat") != nil {
				onGone()
				return
			}
		case <-r.Context().Done():
			onGone()
			return
		}
	}
}
