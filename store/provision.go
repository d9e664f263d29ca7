package store

import (
	"context"
	"fmt"
	"time"

	"github.com/workspaced/workspaced/workspace"
)

// AcquireProvisionLock takes cid's provisioning lock for holder until ttl
// passes (by the store's clock). It reports false if another holder holds
// an unexpired lock. The same holder acquiring again extends the lock.
func (v Leases) AcquireProvisionLock(ctx context.Context, cid, holder string, ttl time.Duration) (bool, error) {
	n, err := v.c.run(ctx, scriptLockAcquire, []string{v.c.k.lock(cid)}, holder, durMS(ttl)).Int()
	if err != nil {
		return false, fmt.Errorf("acquire provision lock %s: %w", cid, err)
	}
	return n == 1, nil
}

// ReleaseProvisionLock releases cid's provisioning lock if holder holds it,
// and reports whether it did. A lock that expired and was taken by another
// holder is left alone.
func (v Leases) ReleaseProvisionLock(ctx context.Context, cid, holder string) (bool, error) {
	n, err := v.c.run(ctx, scriptLockRelease, []string{v.c.k.lock(cid)}, holder).Int()
	if err != nil {
		return false, fmt.Errorf("release provision lock %s: %w", cid, err)
	}
	return n == 1, nil
}

// Binding is what BindProvisioning records.
type Binding struct {
	Conversation string
	// Generation is the conversation generation the workspace was started
	// for (its token derives from it); the bind is refused if it moved on.
	Generation int64
	// Workspace is what the runtime's Start returned.
	Workspace workspace.Info
	// RequestedAt is when the serving request was made (latency metric);
	// zero keeps the recorded one.
	RequestedAt time.Time
}

// BindProvisioning binds b.Conversation to the started workspace. The
// workspace keeps whatever state events already gave it: if it is already
// ready the conversation becomes ready at once.
//
// It returns the conversation after the call and:
//   - nil when bound, also when it already was bound to that workspace;
//   - ErrConflict when the conversation is bound to another live workspace
//     or its generation is no longer b.Generation (the caller should stop
//     the workspace it started unless the conversation is bound to it);
//   - ErrWorkspaceStopped when the workspace already stopped: the
//     conversation is then lost and its generation advanced, so a retry
//     starts a new workspace.
func (v Conversations) BindProvisioning(ctx context.Context, b Binding) (Conversation, error) {
	cid, wid := b.Conversation, b.Workspace.ID
	if cid == "" || wid == "" {
		return Conversation{}, fmt.Errorf("bind conversation %q to workspace %q: empty id", cid, wid)
	}
	var rat any = ""
	if !b.RequestedAt.IsZero() {
		rat = ms(b.RequestedAt)
	}
	r, err := v.c.runStrings(ctx, scriptBind, []string{v.c.k.conv(cid), v.c.k.ws(wid)},
		cid, wid, b.Generation, b.Workspace.Token, b.Workspace.Tenant, b.Workspace.Endpoint, rat)
	if err != nil {
		return Conversation{}, fmt.Errorf("bind conversation %s to workspace %s: %w", cid, wid, err)
	}
	c, err := conversationJSON(cid, r[1])
	if err != nil {
		return Conversation{}, err
	}
	switch r[0] {
	case "bound":
		return c, nil
	case "stopped":
		return c, fmt.Errorf("bind conversation %s to workspace %s: %w", cid, wid, ErrWorkspaceStopped)
	case "generation":
		return c, fmt.Errorf("bind conversation %s to workspace %s: generation %d, want %d: %w",
			cid, wid, c.Generation, b.Generation, ErrConflict)
	default:
		return c, fmt.Errorf("bind conversation %s to workspace %s: bound to live workspace %s: %w",
			cid, wid, c.Workspace, ErrConflict)
	}
}
