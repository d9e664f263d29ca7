package store

import (
	"context"
	"fmt"
	"time"
)

// Touch records a use of workspace wid now (the idle clock restarts). A
// use of an unknown or stopped workspace is ignored; it reports whether
// the use was recorded. Last-use times never move backwards.
func (v Activity) Touch(ctx context.Context, wid string) (bool, error) {
	n, err := v.c.run(ctx, scriptTouch, []string{v.c.k.ws(wid), v.c.k.lastuse()}, wid).Int()
	if err != nil {
		return false, fmt.Errorf("touch workspace %s: %w", wid, err)
	}
	return n == 1, nil
}

// StreamStarted records an open stream streamID on workspace wid with a
// lease of ttl, and touches the workspace. While any lease of a workspace
// is unexpired it is never idle. Call it again before the lease runs out
// to renew it (RenewStream); a crashed API replica's lease simply expires.
// It reports false (and records nothing) for an unknown or stopped
// workspace.
func (v Activity) StreamStarted(ctx context.Context, wid, streamID string, ttl time.Duration) (bool, error) {
	n, err := v.c.run(ctx, scriptStreamStart, []string{v.c.k.ws(wid), v.c.k.streams(wid)}, wid, streamID, durMS(ttl)).Int()
	if err != nil {
		return false, fmt.Errorf("start stream %s on workspace %s: %w", streamID, wid, err)
	}
	return n == 1, nil
}

// RenewStream extends stream streamID's lease on wid to ttl from now.
func (v Activity) RenewStream(ctx context.Context, wid, streamID string, ttl time.Duration) (bool, error) {
	return v.StreamStarted(ctx, wid, streamID, ttl)
}

// StreamEnded drops stream streamID's lease on wid and touches the
// workspace (the end of a stream is a use).
func (v Activity) StreamEnded(ctx context.Context, wid, streamID string) error {
	if err := v.c.run(ctx, scriptStreamEnd, []string{v.c.k.ws(wid), v.c.k.streams(wid)}, wid, streamID).Err(); err != nil {
		return fmt.Errorf("end stream %s on workspace %s: %w", streamID, wid, err)
	}
	return nil
}

// Idle is a workspace unused for longer than the idle TTL.
type Idle struct {
	Workspace    string
	Conversation string
	LastUse      time.Time
}

// idleScanFactor bounds how many candidates one IdleWorkspaces call looks
// at per result wanted (candidates with open streams are skipped).
const idleScanFactor = 10

// IdleWorkspaces returns up to limit workspaces (oldest use first) whose
// last use is at least ttl ago and that have no unexpired stream lease.
// Only conversation workspaces that became ready are tracked for use; pool
// inventory is not. Read-only except that it prunes expired leases.
func (v Activity) IdleWorkspaces(ctx context.Context, ttl time.Duration, limit int) ([]Idle, error) {
	if limit <= 0 {
		limit = 100
	}
	cutoff := ms(v.c.now().Add(-ttl))
	r, err := v.c.runStrings(ctx, scriptIdle, []string{v.c.k.lastuse()}, cutoff, limit, limit*idleScanFactor)
	if err != nil {
		return nil, fmt.Errorf("query idle workspaces: %w", err)
	}
	out := make([]Idle, 0, len(r)/3)
	for i := 0; i+2 < len(r) && len(out) < limit; i += 3 {
		out = append(out, Idle{Workspace: r[i], LastUse: fromMS(r[i+1]), Conversation: r[i+2]})
	}
	return out, nil
}

// Use is a workspace used after some time (UsedSince).
type Use struct {
	Workspace    string
	Conversation string
	LastUse      time.Time
	// Streaming is true while the workspace has an unexpired stream lease
	// (a run is being relayed).
	Streaming bool
}

// UsedSince returns up to limit workspaces (oldest use first) whose last
// use is after since, each saying whether a stream is open on it now. The
// checkpointer reads it: a stream's end touches the workspace, so a
// workspace used after its last checkpoint and no longer streaming has
// finished a run since. Read-only.
func (v Activity) UsedSince(ctx context.Context, since time.Time, limit int) ([]Use, error) {
	if limit <= 0 {
		limit = 100
	}
	r, err := v.c.runStrings(ctx, scriptUsed, []string{v.c.k.lastuse()}, ms(since), limit)
	if err != nil {
		return nil, fmt.Errorf("query used workspaces: %w", err)
	}
	out := make([]Use, 0, len(r)/4)
	for i := 0; i+3 < len(r); i += 4 {
		out = append(out, Use{Workspace: r[i], LastUse: fromMS(r[i+1]), Conversation: r[i+2], Streaming: r[i+3] != "0"})
	}
	return out, nil
}
