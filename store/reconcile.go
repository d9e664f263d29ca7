package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/workspaced/workspaced/workspace"
)

// The reconciler's repairs: level-based corrections from what the runtime
// actually runs. Each is one script and safe to repeat.

// MarkStopped records that the runtime no longer runs wid (it is gone, or
// stopped while its events were lost), exactly as a STOPPED event would,
// but without an event version: STOPPED is final whatever the version. It
// ends the conversation's binding (lost, or released if a release was
// under way). It reports whether anything changed (false if wid was
// already stopped).
func (v Events) MarkStopped(ctx context.Context, wid, reason string) (ApplyResult, error) {
	r, err := v.c.run(ctx, scriptApply, []string{v.c.k.ws(wid)},
		durMS(v.c.tombstone), wid, "", string(workspace.StatusStopped), "stopped", reason).Slice()
	if err == nil && len(r) != 1 {
		err = fmt.Errorf("%d replies for 1 event", len(r))
	}
	if err != nil {
		return ApplyResult{}, fmt.Errorf("mark workspace %s stopped: %w", wid, err)
	}
	return applyResult(wid, r[0])
}

// Adoption is what the reconciler knows about a running workspace Redis
// lost track of: the runtime's Info and the durable claim record (labels,
// tags, the claim file).
type Adoption struct {
	Workspace    workspace.Info
	Conversation string
	Owner        string
	Tenant       string
	Generation   int64
	// Ready: the agent answered its health check just now.
	Ready bool
}

// AdoptOutcome says what AdoptWorkspace did.
type AdoptOutcome string

// Outcomes of AdoptWorkspace.
const (
	AdoptAdopted    AdoptOutcome = "adopted"    // records and binding restored
	AdoptUnchanged  AdoptOutcome = "unchanged"  // Redis already agreed
	AdoptConflict   AdoptOutcome = "conflict"   // the conversation is bound to another live workspace
	AdoptSuperseded AdoptOutcome = "superseded" // the workspace belongs to an older generation
	AdoptStopped    AdoptOutcome = "stopped"    // Redis knows it stopped
)

// AdoptWorkspace restores a running workspace's record and its
// conversation's binding, owner, tenant and generation (docs/contracts.md §4.7.6:
// losing Redis loses nothing durable). A conversation is never taken from
// another live workspace, and a workspace of a generation older than the
// conversation's is not bound (conflict / superseded: the caller leaves it
// to the orphan reaper).
func (v Events) AdoptWorkspace(ctx context.Context, a Adoption) (AdoptOutcome, Conversation, error) {
	cid, wid := a.Conversation, a.Workspace.ID
	if cid == "" || wid == "" {
		return "", Conversation{}, fmt.Errorf("adopt workspace %q for %q: empty id", wid, cid)
	}
	ready, pool := "0", "0"
	if a.Ready {
		ready = "1"
	}
	if a.Workspace.Pool {
		pool = "1"
	}
	r, err := v.c.runStrings(ctx, scriptAdopt, []string{v.c.k.conv(cid), v.c.k.ws(wid)},
		cid, wid, a.Workspace.Token, a.Tenant, a.Owner, a.Generation, a.Workspace.Endpoint, ready, pool)
	if err != nil {
		return "", Conversation{}, fmt.Errorf("adopt workspace %s for %s: %w", wid, cid, err)
	}
	c, err := conversationJSON(cid, r[1])
	if err != nil {
		return "", Conversation{}, err
	}
	return AdoptOutcome(r[0]), c, nil
}

// RefreshEndpoint updates wid's agent endpoint (and its ready
// conversation's) when the runtime reports another one. It reports whether
// anything changed.
func (v Events) RefreshEndpoint(ctx context.Context, wid, endpoint string) (bool, error) {
	n, err := v.c.run(ctx, scriptEndpoint, []string{v.c.k.ws(wid)}, wid, endpoint).Int()
	if err != nil {
		return false, fmt.Errorf("refresh endpoint of %s: %w", wid, err)
	}
	return n == 1, nil
}

// ClearDeadBindings ends (as lost) the binding of every conversation bound
// to a workspace Redis has no record of, and returns how many it ended.
// It walks conversation keys with SCAN (bounded batches, no blocking);
// concurrent changes are judged per conversation inside a script.
func (v Events) ClearDeadBindings(ctx context.Context) (int, error) {
	prefix := v.c.k.conv("")
	iter := v.c.rdb.Scan(ctx, 0, prefix+"*", 500).Iterator()
	n := 0
	for iter.Next(ctx) {
		cid := strings.TrimPrefix(iter.Val(), prefix)
		if cid == "" || strings.Contains(cid, ":") {
			continue
		}
		k, err := v.c.run(ctx, scriptDeadBinding, []string{v.c.k.conv(cid)}, cid).Int()
		if err != nil {
			return n, fmt.Errorf("clear dead binding of %s: %w", cid, err)
		}
		n += k
	}
	if err := iter.Err(); err != nil {
		return n, fmt.Errorf("scan conversations: %w", err)
	}
	return n, nil
}
