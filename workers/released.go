package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/workspaced/workspaced/events"
	"github.com/workspaced/workspaced/store"
	"github.com/workspaced/workspaced/workspace"
)

// Saver saves a workspace's files before it is stopped (S3, in a later
// issue). An error is retried (the workspace is not stopped meanwhile).
type Saver interface {
	Save(ctx context.Context, t workspace.SaveTarget) error
}

// ReleaserOptions configure a Releaser.
type ReleaserOptions struct {
	// Saver is called before a bound, ready workspace is stopped; nil skips
	// saving.
	Saver Saver
	// Logger (default slog.Default()).
	Logger *slog.Logger
}

// Releaser consumes workspace.released: it saves and stops the workspace
// and clears the conversation's binding. Idempotent; safe for concurrent
// use.
type Releaser struct {
	rt    workspace.Runtime
	st    ReleaseStore
	saver Saver
	log   *slog.Logger
}

// NewReleaser returns the workspace.released consumer.
func NewReleaser(rt workspace.Runtime, st ReleaseStore, opts ReleaserOptions) *Releaser {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Releaser{rt: rt, st: st, saver: opts.Saver, log: opts.Logger.With("component", "releaser")}
}

// Release handles a workspace.released command (cmd/ routes
// events.TopicWorkspaceReleased to it through bus.Handle, which decodes);
// runtime and store failures return a plain error (retry). With
// cmd.WorkspaceID set it releases
// only that workspace: if the conversation is bound to another one by now,
// that binding is untouched and only the named workspace is stopped.
//
// Order: mark releasing, save, stop, unbind. The conversation stays bound
// until the workspace is stopped, so a request meanwhile cannot start a
// second workspace; the releasing mark makes the STOPPED event (which may
// overtake the unbind) end the binding as released, not lost.
func (r *Releaser) Release(ctx context.Context, cmd events.WorkspaceReleased) error {
	cid := cmd.ConversationID
	conv, err := r.st.Conversation(ctx, cid)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("release conversation %s: %w", cid, err)
	}
	wid := cmd.WorkspaceID
	if wid == "" {
		wid = conv.Workspace
	}
	log := r.log.With("conversation", cid, "workspace", wid, "reason", cmd.Reason, "correlation_id", events.CorrelationIDFromContext(ctx))
	if wid == "" {
		log.Debug("nothing to release")
		return nil
	}
	bound := conv.Live() && conv.Workspace == wid
	if bound {
		if _, err := r.st.MarkReleasing(ctx, wid, string(cmd.Reason)); err != nil {
			return fmt.Errorf("release workspace %s: %w", wid, err)
		}
		if err := r.save(ctx, conv, cmd.Reason); err != nil {
			return err
		}
	}
	if err := r.rt.Stop(ctx, wid, string(cmd.Reason)); err != nil {
		return fmt.Errorf("release workspace %s: %w", wid, err)
	}
	if bound {
		if _, err := r.st.Unbind(ctx, cid, wid); err != nil && !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("release workspace %s: %w", wid, err)
		}
	}
	log.Info("workspace released", "bound", bound)
	return nil
}

// save runs the Saver for a ready workspace that is still running (a
// retried release whose first attempt already stopped it skips saving).
func (r *Releaser) save(ctx context.Context, conv store.Conversation, reason events.ReleaseReason) error {
	if r.saver == nil || conv.State != store.StateReady {
		return nil
	}
	wid := conv.Workspace
	info, err := r.rt.Inspect(ctx, wid)
	switch {
	case errors.Is(err, workspace.ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("release workspace %s: %w", wid, err)
	case info.Status.Stopping():
		return nil
	}
	t := workspace.SaveTarget{Tenant: conv.Tenant, Conversation: conv.ID, Workspace: wid, Endpoint: conv.Endpoint, Reason: string(reason)}
	if err := r.saver.Save(ctx, t); err != nil {
		return fmt.Errorf("save workspace %s: %w", wid, err)
	}
	return nil
}
