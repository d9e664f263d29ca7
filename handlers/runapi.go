package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/workspaced/workspaced/agent/api"
	"github.com/workspaced/workspaced/agent/client"
	"github.com/workspaced/workspaced/sse"
	"github.com/workspaced/workspaced/store"
)

// runView is the JSON of a run in GET .../runs and GET .../runs/{run}.
type runView struct {
	RunID          string     `json:"run_id"`
	ConversationID string     `json:"conversation_id"`
	State          string     `json:"state"`
	ExitCode       *int       `json:"exit_code,omitempty"`
	Error          string     `json:"error,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
	EndedAt        *time.Time `json:"ended_at,omitempty"`
}

func viewOf(r store.Run) runView {
	v := runView{RunID: r.ID, ConversationID: r.Conversation, State: string(r.State), Error: r.Error, CreatedAt: r.CreatedAt}
	if r.State == store.RunDone {
		code := r.ExitCode
		v.ExitCode = &code
	}
	if !r.EndedAt.IsZero() {
		t := r.EndedAt
		v.EndedAt = &t
	}
	return v
}

var errRunNotFound = &apiError{http.StatusNotFound, codeNotFound, "run not found"}

// ownedRun returns the caller's conversation's run {run}.
func (s *Server) ownedRun(c echo.Context) (store.Run, error) {
	conv, err := s.owned(c)
	if err != nil {
		return store.Run{}, err
	}
	rid := c.Param("run")
	if !api.ValidRunID(rid) {
		return store.Run{}, badRequest("run id must match ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
	}
	r, err := s.opts.Store.GetRun(c.Request().Context(), rid)
	if errors.Is(err, store.ErrNotFound) || (err == nil && r.Conversation != conv.ID) {
		return r, errRunNotFound
	}
	if err != nil {
		return r, fmt.Errorf("read run: %w", err)
	}
	return r, nil
}

// listRuns answers GET /v1/conversations/{id}/runs: the conversation's
// recent runs, newest first.
func (s *Server) listRuns(c echo.Context) error {
	conv, err := s.owned(c)
	if err != nil {
		return err
	}
	runs, err := s.opts.Store.ConversationRuns(c.Request().Context(), conv.ID, 0)
	if err != nil {
		return fmt.Errorf("list runs: %w", err)
	}
	out := make([]runView, 0, len(runs))
	for _, r := range runs {
		out = append(out, viewOf(r))
	}
	return c.JSON(http.StatusOK, map[string]any{"runs": out})
}

// getRun answers GET /v1/conversations/{id}/runs/{run}.
func (s *Server) getRun(c echo.Context) error {
	r, err := s.ownedRun(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, viewOf(r))
}

// cancelRunAPI answers POST /v1/conversations/{id}/runs/{run}/cancel with
// 202: the run's relayer cancels it (the agent kills its process group,
// the final event says "cancelled"). Cancelling an ended run is a no-op.
func (s *Server) cancelRunAPI(c echo.Context) error {
	r, err := s.ownedRun(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if r.Active() {
		if err := s.opts.Store.CancelRun(ctx, r.ID); err != nil {
			return fmt.Errorf("cancel run: %w", err)
		}
		s.mu.Lock()
		d := s.drivers[r.ID]
		s.mu.Unlock()
		switch {
		case d != nil:
			d.cancelRun("cancel requested")
		case r.State == store.RunRunning:
			// Faster than the relayer's next look at the record.
			if rt, err := s.opts.Transports.Transport(r.Endpoint); err == nil {
				if err := client.New(rt).Cancel(ctx, r.ID); err != nil {
					s.log.Warn("run not cancelled in the agent; its relayer will", "run", r.ID, "err", err)
				}
			}
		}
	}
	return c.JSON(http.StatusAccepted, map[string]string{"run_id": r.ID, "status": "cancelling"})
}

// lastEventID is the id a follower resumes after: the Last-Event-ID
// header, else ?after=, else 0.
func lastEventID(c echo.Context) (int64, error) {
	raw := c.Request().Header.Get("Last-Event-ID")
	name := "Last-Event-ID"
	if raw == "" {
		raw, name = c.QueryParam("after"), "after"
	}
	n, err := api.ParseEventID(raw)
	if err != nil {
		return 0, badRequest(name + " must be an event id (a decimal integer from 0)")
	}
	return n, nil
}

// followBatch bounds the entries (batches of events) one read of the log
// returns (the store reads at most 32 at once).
const followBatch = 512

// followRun answers GET /v1/conversations/{id}/runs/{run}/events: the
// run's events after Last-Event-ID (or ?after=) from its log, then the
// live ones until the final event. If events after that id were trimmed,
// the stream ends with a final error run_log_trimmed (no id). A run
// without a live relayer is taken over by this replica.
func (s *Server) followRun(c echo.Context) error {
	r, err := s.ownedRun(c)
	if err != nil {
		return err
	}
	after, err := lastEventID(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	first, last, err := s.opts.Store.RunLogBounds(ctx, r.ID)
	if err != nil {
		return fmt.Errorf("read run log: %w", err)
	}
	if after > last && !r.Active() {
		return badRequest(fmt.Sprintf("the run's last event is %d", last))
	}
	c.Response().Header().Set(RunIDHeader, r.ID)
	st := s.openStream(c)
	defer st.close()
	seen := func() {
		sctx, cancel := context.WithTimeout(s.bg, 5*time.Second)
		defer cancel()
		_ = s.opts.Store.SeenRun(sctx, r.ID)
	}
	seen()
	st.setBeat(seen)
	if first > after+1 {
		s.trimmed(st, after, first)
		return nil
	}
	if r.Active() {
		s.adopt(ctx, r.ID)
	}
	s.follow(ctx, st, r.ID, after)
	return nil
}

// trimmed ends a follower whose next event is gone from the bounded log.
func (s *Server) trimmed(st *stream, after, first int64) {
	_ = st.sendJSON(eventError, errorBody{errorDetail{codeLogTrimmed,
		fmt.Sprintf("events %d to %d of the run were trimmed from its log (RUN_LOG_MAX_EVENTS); the oldest kept is %d", after+1, first-1, first)}})
}

// follow streams the run's log after id after until the final event, the
// client going away, or the replica draining (a retry hint).
func (s *Server) follow(ctx context.Context, st *stream, rid string, after int64) {
	block := min(s.opts.Heartbeat, 5*time.Second)
	for {
		evs, err := s.opts.Store.RunEvents(ctx, rid, after, followBatch)
		if err == nil && len(evs) == 0 {
			evs, err = s.opts.Store.WaitRunEvents(ctx, rid, after, followBatch, block)
		}
		if ctx.Err() != nil {
			return
		}
		select {
		case <-s.drain:
			_ = st.retry(s.opts.RetryHint)
			return
		default:
		}
		if err != nil {
			s.log.Warn("run log unreadable", "run", rid, "err", err)
			if !sleepCtx(ctx, time.Second) {
				return
			}
			continue
		}
		if len(evs) == 0 {
			r, err := s.opts.Store.GetRun(ctx, rid)
			if errors.Is(err, store.ErrNotFound) || (err == nil && !r.Active()) {
				// Ended, and everything stored was read: a run that ended
				// stored its final event first.
				return
			}
			if err == nil {
				s.adopt(ctx, rid)
			}
			continue
		}
		if evs[0].ID != after+1 {
			s.trimmed(st, after, evs[0].ID)
			return
		}
		for _, ev := range evs {
			if st.write(sse.Event{ID: strconv.FormatInt(ev.ID, 10), Event: ev.Event, Data: ev.Data}) != nil {
				return
			}
			after = ev.ID
			if isFinal(ev.Event) {
				return
			}
		}
	}
}

// adopt takes over run rid if no replica relays it (its relay lease is
// free): a running run is resumed from the agent after the last event
// stored; a run that never reached its agent ends with run_lost.
func (s *Server) adopt(ctx context.Context, rid string) {
	if s.isDraining() {
		return
	}
	s.mu.Lock()
	_, mine := s.drivers[rid]
	s.mu.Unlock()
	if mine {
		return
	}
	ok, err := s.opts.Store.AcquireLease(ctx, runLeaseName(rid), s.replica, s.opts.RunLeaseTTL)
	if err != nil || !ok {
		return
	}
	r, err := s.opts.Store.GetRun(ctx, rid)
	if err == nil && r.Active() {
		var last int64
		if _, last, err = s.opts.Store.RunLogBounds(ctx, rid); err == nil {
			if d, ok := s.newDriver(s.bg, r, last); ok {
				if r.State == store.RunRunning {
					d.goRun(d.resume)
				} else {
					d.goRun(func(context.Context) {
						d.fail(&streamError{codeRunLost, "the replica serving the run stopped before the run started; execute again"})
					})
				}
				return
			}
		}
	}
	s.mu.Lock()
	_, mine = s.drivers[rid] // a concurrent adopt won: the lease is its
	s.mu.Unlock()
	if !mine {
		_, _ = s.opts.Store.ReleaseLease(ctx, runLeaseName(rid), s.replica)
	}
}

// Run looks for runs without a live relayer every half lease TTL and
// takes them over, until ctx ends (the API role's background loop).
func (s *Server) Run(ctx context.Context) error {
	t := time.NewTicker(s.opts.RunLeaseTTL / 2)
	defer t.Stop()
	for {
		ids, err := s.opts.Store.ActiveRuns(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("active runs unreadable", "err", err)
		}
		for _, rid := range ids {
			s.adopt(ctx, rid)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
