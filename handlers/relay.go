package handlers

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/workspaced/workspaced/agent/api"
	"github.com/workspaced/workspaced/agent/client"
	"github.com/workspaced/workspaced/store"
)

// relay runs req on the conversation's workspace and passes the agent's
// events on one by one, each flushed, until the agent's final "done". The
// open stream holds a lease in Redis (renewed every heartbeat) so idle GC
// never reaps a workspace in use. Cancelling ctx (client gone) or aborting
// the server closes the upstream request, which kills the run in the agent.
func (s *Server) relay(ctx context.Context, st *stream, conv store.Conversation, req api.ExecuteRequest) *streamError {
	rt, err := s.opts.Transports.Transport(conv.Endpoint)
	if err != nil {
		s.log.Error("no transport to workspace", "conversation", conv.ID, "workspace", conv.Workspace, "err", err)
		return &streamError{codeUpstream, "workspace endpoint unusable"}
	}
	ctx, cancel := s.withAbort(ctx)
	defer cancel(nil)

	lease := s.opts.NewID()
	s.holdLease(ctx, st, conv.Workspace, lease)
	defer s.dropLease(conv.Workspace, lease)

	up, err := s.startRun(ctx, st, client.New(rt), req)
	if err != nil {
		if ctx.Err() != nil {
			return s.ended(ctx, err)
		}
		if errors.Is(err, client.ErrBusy) {
			return &streamError{codeBusy, "the workspace is running another request of this conversation"}
		}
		s.log.Warn("workspace unreachable", "conversation", conv.ID, "workspace", conv.Workspace, "err", err)
		return &streamError{codeUpstream, "workspace did not accept the request"}
	}
	defer up.Close()
	for {
		ev, err := up.Next()
		if err != nil {
			if ctx.Err() != nil {
				return s.ended(ctx, err)
			}
			if !errors.Is(err, io.EOF) {
				s.log.Warn("workspace stream broken", "conversation", conv.ID, "workspace", conv.Workspace, "err", err)
			}
			return &streamError{codeBroken, "the workspace's stream ended without a final event"}
		}
		if err := st.send(ev.Event, ev.Data); err != nil {
			return &streamError{codeCancelled, "client went away"}
		}
		s.metrics.relayBytes.Add(float64(len(ev.Data)))
		s.metrics.relayEvents.WithLabelValues(ev.Event).Inc()
		if ev.Event == api.EventDone {
			return nil
		}
	}
}

// holdLease records the open stream in Redis and renews it every heartbeat.
// A failed write is logged, not fatal: the lease only protects the
// workspace from idle GC.
func (s *Server) holdLease(ctx context.Context, st *stream, wid, lease string) {
	renew := func() {
		if _, err := s.opts.Store.StreamStarted(ctx, wid, lease, s.opts.StreamLease); err != nil && ctx.Err() == nil {
			s.log.Warn("stream lease not recorded", "workspace", wid, "err", err)
		}
	}
	renew()
	st.setBeat(renew)
}

func (s *Server) dropLease(wid, lease string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.opts.Store.StreamEnded(ctx, wid, lease); err != nil {
		s.log.Warn("stream lease not dropped; it expires", "workspace", wid, "err", err)
	}
}

// busyRetry bounds how long a request waits for an agent that is busy with
// a run this replica does not know about (another replica's, or one being
// killed after its client left).
const (
	busyRetryFor = 30 * time.Second
	busyMinWait  = 50 * time.Millisecond
	busyMaxWait  = 2 * time.Second
)

// startRun starts the run, waiting with backoff while the agent answers 409
// (busy). The waits are on the agent, an external server with no change
// notification; they are bounded by busyRetryFor.
func (s *Server) startRun(ctx context.Context, st *stream, cl *client.Client, req api.ExecuteRequest) (*client.Stream, error) {
	deadline := s.opts.Now().Add(busyRetryFor)
	wait := busyMinWait
	for told := false; ; {
		up, err := cl.Execute(ctx, req)
		if !errors.Is(err, client.ErrBusy) || s.opts.Now().After(deadline) {
			return up, err
		}
		if !told {
			told = true
			_ = st.sendJSON("status", statusEvent{State: "waiting"})
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, busyMaxWait)
	}
}
