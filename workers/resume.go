package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/workspaced/workspaced/store"
	"github.com/workspaced/workspaced/workspace"
)

// existedMargin absorbs clock skew between the runtime's creation time
// and ours when telling a workspace Start found from one it created.
const existedMargin = time.Second

// existed reports whether a running workspace that Start returned was
// there before Start began (Start found it by its token): its RUNNING
// event, if there ever was one, was handled or lost before.
func existed(info workspace.Info, began time.Time) bool {
	return info.Status == workspace.StatusRunning && !info.CreatedAt.IsZero() &&
		info.CreatedAt.Before(began.Add(-existedMargin))
}

// resume finishes the provisioning of conv's bound workspace on demand,
// under the conversation's lock (the caller holds it): a workspace the
// runtime runs whose agent answers is made ready now (Ready's Adopt:
// claim record, rules, and files unless it may have served already), so
// a request does not wait for the reconciler after Redis lost it or a
// process died mid-provisioning. A workspace that is not running yet is
// left to its events; an agent that does not answer yet is retried.
// Unless found (Start just found it running), a workspace whose RUNNING
// event has not come is left alone for a lock TTL after it was bound:
// its events are late, not lost, and asking the runtime on every
// request's nudge would only spend API calls.
func (p *Provisioner) resume(ctx context.Context, conv store.Conversation, found bool, log *slog.Logger) error {
	if p.opts.Ready == nil {
		return nil
	}
	w, err := p.st.Workspace(ctx, conv.Workspace)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil // the reconciler clears a binding to an unknown workspace
	case err != nil:
		return fmt.Errorf("resume workspace %s: %w", conv.Workspace, err)
	case w.State == store.WorkspaceReady || w.State == store.WorkspaceStopped:
		return nil
	case !found && w.State == store.WorkspaceProvisioning && p.now().Sub(w.CreatedAt) < p.opts.LockTTL:
		return nil
	}
	info, err := p.rt.Inspect(ctx, w.ID)
	switch {
	case errors.Is(err, workspace.ErrNotFound):
		return nil // its STOPPED event or the reconciler ends the binding
	case err != nil:
		return fmt.Errorf("resume workspace %s: %w", w.ID, err)
	case info.Status != workspace.StatusRunning || info.Endpoint == "":
		return nil // still starting: its events will come
	}
	if err := p.checkClaimed(ctx, info); err != nil {
		// Just started (or resumed): the next delivery or request retries.
		return fmt.Errorf("resume workspace %s: agent not answering yet: %w", w.ID, err)
	}
	if w.Conversation == "" {
		w.Conversation = conv.ID
	}
	if err := p.opts.Ready.Adopt(ctx, w, info); err != nil {
		return fmt.Errorf("resume workspace %s: %w", w.ID, err)
	}
	p.m.repair(RepairResumed, 1)
	log.Info("running workspace adopted on demand", "state", w.State)
	return nil
}
