package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/workspaced/workspaced/events"
	"github.com/workspaced/workspaced/store"
	"github.com/workspaced/workspaced/workspace"
)

// warm serves the request from the warm pool: one atomic claim (the store
// pops an available workspace and binds the conversation to it), a health
// check alongside personalisation, then ready. A claimed workspace that fails its
// check is released and the next one tried; it reports served=false when
// the pool is empty (or every try failed): the caller starts one cold.
// An error means the message is retried (the claim was undone first).
func (p *Provisioner) warm(ctx context.Context, cmd events.WorkspaceRequested, conv store.Conversation, log *slog.Logger) (served bool, err error) {
	cid := cmd.ConversationID
	began := p.now()
	for range p.opts.ClaimAttempts {
		cl, err := p.st.ClaimPoolWorkspace(ctx, cid, conv.Generation, cmd.RequestedAt)
		switch {
		case errors.Is(err, store.ErrPoolEmpty):
			p.m.claim(ClaimMiss)
			log.Debug("warm pool empty; starting cold")
			return false, nil
		case errors.Is(err, store.ErrConflict):
			// Bound or moved on meanwhile (the reconciler adopted a
			// workspace): the cold path's bind sorts it out.
			return false, nil
		case err != nil:
			return false, fmt.Errorf("provision conversation %s: %w", cid, err)
		}
		w := cl.Workspace
		info := workspace.Info{ID: w.ID, Token: w.Token, Endpoint: w.Endpoint, Conversation: cid,
			Tenant: cl.Conversation.Tenant, Pool: true}
		wlog := log.With("workspace", w.ID)
		// The health check runs alongside personalisation, not before it
		// (D37): the workspace answered /health and was warmed up before
		// it was offered, so the check only guards against one that hung
		// since, and an unhealthy one is stopped with whatever
		// personalisation gave it. Its failure cancels personalisation.
		pctx, cancel := context.WithCancelCause(ctx)
		checked := make(chan error, 1)
		go func() {
			err := p.checkClaimed(ctx, info)
			if err != nil {
				cancel(err)
			}
			checked <- err
		}()
		perr := p.opts.Personaliser.Personalise(pctx, cl.Conversation, info, conv.Generation)
		herr := <-checked
		cancel(nil)
		if herr != nil {
			p.m.claim(ClaimUnhealthy)
			wlog.Warn("claimed pool workspace unhealthy; releasing it", "err", herr)
			if err := p.abandon(ctx, cid, w.ID, "unhealthy"); err != nil {
				return false, err
			}
			continue
		}
		if err := perr; err != nil {
			p.m.failure(FailPersonalise)
			wlog.Warn("personalising claimed workspace failed; releasing it", "err", err)
			if aerr := p.abandon(ctx, cid, w.ID, "personalise_failed"); aerr != nil {
				return false, errors.Join(err, aerr)
			}
			return false, fmt.Errorf("provision conversation %s: %w", cid, err)
		}
		if _, err := p.st.ActivateClaim(ctx, cid, w.ID); err != nil {
			// Stopped meanwhile (its STOPPED event ended the binding) or
			// taken away: a redelivery starts over from the new state.
			return false, fmt.Errorf("provision conversation %s: %w", cid, err)
		}
		p.m.claim(ClaimHit)
		p.m.acquired(StartWarm, p.now().Sub(began).Seconds())
		if !cmd.RequestedAt.IsZero() {
			p.m.provisioned(StartWarm, p.now().Sub(cmd.RequestedAt).Seconds())
		}
		wlog.Info("warm workspace handed over", "claim_ms", p.now().Sub(began).Milliseconds())
		return true, nil
	}
	return false, nil
}

// checkClaimed asks a claimed workspace's agent whether it serves.
func (p *Provisioner) checkClaimed(ctx context.Context, info workspace.Info) error {
	rt, err := p.rt.Transport(info.Endpoint)
	if err != nil {
		return fmt.Errorf("transport to %s: %w", info.Endpoint, err)
	}
	if c, ok := rt.(interface{ CloseIdleConnections() }); ok {
		defer c.CloseIdleConnections()
	}
	hctx, cancel := context.WithTimeout(ctx, p.opts.ClaimHealthTimeout)
	defer cancel()
	return p.opts.Health.Healthy(hctx, rt, info.Endpoint)
}

// abandon undoes a claim (the conversation goes back to queued) and stops
// the workspace: it may hold some of the conversation's state now.
func (p *Provisioner) abandon(ctx context.Context, cid, wid, reason string) error {
	if _, err := p.st.AbandonClaim(ctx, cid, wid, reason); err != nil && !errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("abandon claim of %s: %w", wid, err)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if err := p.rt.Stop(sctx, wid, "claim abandoned: "+reason); err != nil {
		return fmt.Errorf("stop abandoned workspace %s: %w", wid, err)
	}
	return nil
}
