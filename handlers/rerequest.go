package handlers

import (
	"context"
	"errors"

	"github.com/workspaced/workspaced/store"
)

// nextOrNudge waits for cid's next state like w.Next, but every
// RequestRetry without a change it publishes workspace.requested again:
// the worker that took the last one may have died holding the
// conversation's provisioning lock, or mid-provisioning, and the bus may
// never redeliver (gochannel). Its lock lapses within PROVISION_LOCK_TTL
// and the next request takes over; while its owner lives, the duplicate
// is dropped.
func (s *Server) nextOrNudge(ctx context.Context, w Watcher, cur store.Conversation) (store.Conversation, error) {
	for {
		nctx, cancel := context.WithTimeout(ctx, s.opts.RequestRetry)
		next, err := w.Next(nctx)
		cancel()
		if err == nil || ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
			return next, err
		}
		if cur.State != store.StateQueued && cur.State != store.StateProvisioning {
			continue
		}
		if _, err := s.request(ctx, cur); err != nil {
			return cur, err
		}
	}
}
