package handlers

import (
	"context"
	"errors"

	"github.com/workspaced/workspaced/events"
	"github.com/workspaced/workspaced/store"
)

// errors used as context causes, to tell why a wait or relay ended.
var (
	errShuttingDown = errors.New("server shutting down")
	errProvisionTTL = errors.New("provisioning timed out")
)

// withAbort returns ctx cancelled (cause errShuttingDown) when the server
// aborts its streams.
func (s *Server) withAbort(ctx context.Context) (context.Context, context.CancelCauseFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	go func() {
		select {
		case <-s.abort:
			cancel(errShuttingDown)
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// awaitReady returns the conversation once it is bound to a ready
// workspace. If it is not, it publishes workspace.requested and follows the
// conversation's state through Redis pub/sub, streaming status events,
// until ready, failed, or the provisioning deadline.
func (s *Server) awaitReady(ctx context.Context, st eventSink, conv store.Conversation) (store.Conversation, *streamError) {
	start := s.opts.Now()
	if conv.State == store.StateReady && conv.Endpoint != "" {
		s.metrics.wait.WithLabelValues("bound").Observe(s.opts.Now().Sub(start).Seconds())
		return conv, nil
	}
	ctx, cancel := s.withAbort(ctx)
	defer cancel(nil)
	ctx, cancelTTL := context.WithTimeoutCause(ctx, s.opts.ProvisionTimeout, errProvisionTTL)
	defer cancelTTL()

	w, err := s.opts.Store.Watch(ctx, conv.ID)
	if err != nil {
		return conv, s.ended(ctx, err)
	}
	defer w.Close()
	cur, err := w.Next(ctx) // the state as of after subscribing: nothing is missed
	if err != nil {
		return conv, s.ended(ctx, err)
	}
	if !cur.Live() && cur.State != store.StateReady {
		if cur, err = s.request(ctx, conv); err != nil {
			return conv, s.ended(ctx, err)
		}
	}
	last := ""
	for {
		switch cur.State {
		case store.StateReady:
			if cur.Endpoint != "" {
				// A new workspace that got saved files and session says
				// which checkpoint (a workspace killed mid-run resumes
				// from its last one).
				// One read answers both: the checkpoint, and whether the
				// workspace came from the pool (the wait's label).
				w, werr := s.opts.Store.Workspace(ctx, cur.Workspace)
				if werr == nil && w.Restored != "" {
					_ = st.sendJSON("status", statusEvent{State: "restored", WorkspaceID: cur.Workspace, Checkpoint: w.Restored})
				}
				_ = st.sendJSON("status", statusEvent{State: "ready", WorkspaceID: cur.Workspace})
				s.metrics.wait.WithLabelValues(startKind(w, werr)).Observe(s.opts.Now().Sub(start).Seconds())
				return cur, nil
			}
		case store.StateFailed:
			return cur, &streamError{codeProvisioning, "workspace could not be started: " + cur.Error}
		case store.StateLost, store.StateReleased:
			return cur, &streamError{codeNoWorkspace, "workspace stopped before it became ready"}
		case store.StateQueued, store.StateProvisioning:
			if string(cur.State) != last {
				last = string(cur.State)
				_ = st.sendJSON("status", statusEvent{State: last, WorkspaceID: cur.Workspace})
			}
		}
		if cur, err = s.nextOrNudge(ctx, w, cur); err != nil {
			return conv, s.ended(ctx, err)
		}
	}
}

// request records the conversation as queued and publishes
// workspace.requested. Duplicates are harmless: the worker is idempotent.
// Its request_id is the request's correlation ID (the HTTP request ID),
// so the binding names the request a task-state event answers.
func (s *Server) request(ctx context.Context, conv store.Conversation) (store.Conversation, error) {
	now := s.opts.Now()
	reqID := events.CorrelationIDFromContext(ctx)
	if reqID == "" {
		reqID = s.opts.NewID()
		ctx = events.WithCorrelationID(ctx, reqID)
	}
	queued, err := s.opts.Store.MarkQueued(ctx, conv.ID, reqID, now)
	if err != nil {
		return conv, err
	}
	cmd := events.WorkspaceRequested{ConversationID: conv.ID, RequestID: reqID, Tenant: conv.Tenant, RequestedAt: now}
	if err := s.opts.Commands.PublishRequested(ctx, cmd); err != nil {
		return conv, err
	}
	s.log.Info("workspace requested", "conversation", conv.ID, "request_id", reqID, "correlation_id", reqID)
	return queued, nil
}

// ended turns the error that ended a wait or relay into the final event.
func (s *Server) ended(ctx context.Context, err error) *streamError {
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, errShuttingDown):
		return &streamError{codeShuttingDown, "server is shutting down; retry on another replica"}
	case errors.Is(cause, errProvisionTTL):
		return &streamError{codeTimeout, "no workspace became ready in time"}
	case ctx.Err() != nil:
		return &streamError{codeCancelled, "request cancelled"}
	}
	s.log.Error("execute stream failed", "err", err)
	return &streamError{codeUnavailable, "internal error while waiting for the workspace"}
}

// startKind labels a wait that ended ready, given the workspace's record
// (and the error of reading it): "warm" when the conversation got a
// warm-pool workspace, "cold" when one was started for it.
func startKind(w store.Workspace, err error) string {
	if err == nil && w.Pool {
		return "warm"
	}
	return "cold"
}
