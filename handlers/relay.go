package handlers

import (
	"context"
	"errors"
	"time"

	"github.com/workspaced/workspaced/agent/api"
	"github.com/workspaced/workspaced/agent/client"
)

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

// startAgent starts run rid in the agent, waiting with backoff while the
// agent answers 409 (busy); onWait is called once, at the first 409, and
// its error ends the wait. The waits are on the agent, an external server
// with no change notification; they are bounded by busyRetryFor.
func (s *Server) startAgent(ctx context.Context, onWait func() error, cl *client.Client, rid string, req api.ExecuteRequest) (*client.Stream, error) {
	deadline := s.opts.Now().Add(busyRetryFor)
	wait := busyMinWait
	for told := false; ; {
		up, err := cl.ExecuteRun(ctx, rid, req)
		if !errors.Is(err, client.ErrBusy) || s.opts.Now().After(deadline) {
			return up, err
		}
		if !told {
			told = true
			if err := onWait(); err != nil {
				return nil, err
			}
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
