package store

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/workspaced/workspaced/workspace"
)

// TaskState is one task-state event as the store needs it.
type TaskState struct {
	// Workspace is the runtime's ID (the event's taskArn).
	Workspace string
	Status    workspace.Status
	// Version orders the events of one workspace; higher is later.
	Version       int64
	StoppedReason string
}

// Outcome says what ApplyTaskState did with an event.
type Outcome string

// Outcomes of ApplyTaskState.
const (
	// OutcomeApplied: the version was newer; it was recorded (the state
	// may or may not have changed: a second RUNNING keeps a ready
	// workspace ready).
	OutcomeApplied Outcome = "applied"
	// OutcomeStale: the version was not newer than the stored one (a
	// duplicate or an overtaken event); nothing changed.
	OutcomeStale Outcome = "stale"
	// OutcomeIgnored: a newer non-stopping event for a stopped workspace.
	// ECS never sends one (STOPPED is final); nothing changed.
	OutcomeIgnored Outcome = "ignored"
)

// ApplyResult is what ApplyTaskState did.
type ApplyResult struct {
	Outcome Outcome
	// Duplicate: stale, with exactly the stored version (a redelivery).
	// Side effects of that version may be re-run (they are idempotent),
	// which completes work a failed earlier delivery left undone.
	Duplicate bool
	// Previous is the workspace state before the event ("" if unknown).
	Previous WorkspaceState
	// Workspace is the record after the event.
	Workspace Workspace
	// Ended is the conversation whose binding this event ended (lost, or
	// released if a release was under way), nil otherwise.
	Ended *Conversation
}

// ApplyTaskState applies ev with a compare-and-set on the workspace's
// event version: only a version higher than the stored one changes
// anything. RUNNING moves a provisioning workspace to running (readiness
// still needs a health check: see MarkReady). Stopping statuses
// (DEACTIVATING, STOPPING, DEPROVISIONING, STOPPED) move it to stopped,
// which is final: the workspace leaves every set, its conversation (if
// still bound to it) becomes lost with a new generation, and watchers are
// notified. Events for a workspace not yet bound are recorded so the later
// BindProvisioning sees their state. Atomic (one script). Concurrent calls
// share one pipelined round trip to Redis (a group commit: applyBatcher).
func (v Events) ApplyTaskState(ctx context.Context, ev TaskState) (ApplyResult, error) {
	if ev.Workspace == "" || ev.Version < 0 {
		return ApplyResult{}, fmt.Errorf("apply task state: workspace %q version %d: invalid", ev.Workspace, ev.Version)
	}
	kind := "other"
	switch {
	case ev.Status == workspace.StatusRunning:
		kind = "running"
	case ev.Status.Stopping():
		kind = "stopped"
	}
	call := &applyCall{ev: ev, kind: kind, done: make(chan struct{})}
	res, err := v.c.applies.do(ctx, call, v.c.flushApplies)
	if err != nil {
		return ApplyResult{}, err
	}
	res.Duplicate = res.Outcome == OutcomeStale && res.Workspace.Version == ev.Version
	return res, nil
}

// applyResult decodes the reply of the apply script: outcome, previous
// state, the workspace hash (flat field/value array), and the conversation
// whose binding ended as JSON ("" if none).
func applyResult(wid string, reply any) (ApplyResult, error) {
	r, ok := reply.([]any)
	if !ok || len(r) != 4 {
		return ApplyResult{}, fmt.Errorf("apply task state of workspace %s: unexpected reply %T", wid, reply)
	}
	outcome, _ := r[0].(string)
	prev, _ := r[1].(string)
	flat, _ := r[2].([]any)
	ended, _ := r[3].(string)
	m := make(map[string]string, len(flat)/2)
	for i := 0; i+1 < len(flat); i += 2 {
		k, _ := flat[i].(string)
		v, _ := flat[i+1].(string)
		m[k] = v
	}
	res := ApplyResult{Outcome: Outcome(outcome), Previous: WorkspaceState(prev), Workspace: parseWorkspace(wid, m)}
	if ended != "" {
		c, err := conversationJSON(res.Workspace.Conversation, ended)
		if err != nil {
			return ApplyResult{}, err
		}
		res.Ended = &c
	}
	return res, nil
}

// ReadyResult is what MarkReady did.
type ReadyResult struct {
	// Changed: the workspace became ready with this call (false if it
	// already was).
	Changed   bool
	Workspace Workspace
	// Conversation is the conversation that became ready with it, nil if
	// the workspace is not bound (a pool workspace, or events overtook the
	// bind: BindProvisioning then makes the conversation ready).
	Conversation *Conversation
}

// MarkReady records that wid's agent answered its health check at
// endpoint. If a conversation is bound to wid it becomes ready with that
// endpoint and watchers are notified; an unclaimed pool workspace joins the
// available inventory. Idempotent. ErrNotFound for an unknown workspace,
// ErrWorkspaceStopped for a stopped one.
func (v Events) MarkReady(ctx context.Context, wid, endpoint string) (ReadyResult, error) {
	r, err := v.c.runStrings(ctx, scriptReady, []string{v.c.k.ws(wid)}, wid, endpoint)
	if err != nil {
		return ReadyResult{}, fmt.Errorf("mark workspace %s ready: %w", wid, err)
	}
	switch r[0] {
	case "not_found":
		return ReadyResult{}, fmt.Errorf("mark workspace %s ready: %w", wid, ErrNotFound)
	case "stopped":
		return ReadyResult{}, fmt.Errorf("mark workspace %s ready: %w", wid, ErrWorkspaceStopped)
	}
	w, err := workspaceJSON(wid, r[1])
	if err != nil {
		return ReadyResult{}, err
	}
	res := ReadyResult{Changed: r[0] == "ready", Workspace: w}
	if r[2] != "" {
		c, err := conversationJSON(w.Conversation, r[2])
		if err != nil {
			return ReadyResult{}, err
		}
		res.Conversation = &c
	}
	return res, nil
}

// MarkReleasing records that a release of wid began (reason), so its
// STOPPED event ends the binding as released rather than lost. It reports
// false if the workspace is unknown.
func (v Events) MarkReleasing(ctx context.Context, wid, reason string) (bool, error) {
	n, err := v.c.run(ctx, scriptReleasing, []string{v.c.k.ws(wid)}, reason).Int()
	if err != nil {
		return false, fmt.Errorf("mark workspace %s releasing: %w", wid, err)
	}
	return n == 1, nil
}

// Workspace returns wid's record, or ErrNotFound. A stopped workspace is
// found until its tombstone expires.
func (v Events) Workspace(ctx context.Context, wid string) (Workspace, error) {
	m, err := v.c.rdb.HGetAll(ctx, v.c.k.ws(wid)).Result()
	if err != nil {
		return Workspace{}, fmt.Errorf("read workspace %s: %w", wid, err)
	}
	if len(m) == 0 {
		return Workspace{}, fmt.Errorf("read workspace %s: %w", wid, ErrNotFound)
	}
	return parseWorkspace(wid, m), nil
}

// Workspaces returns every tracked (not stopped) workspace, for the
// reconciler. Not a snapshot: records are read one by one after listing.
func (v Events) Workspaces(ctx context.Context) ([]Workspace, error) {
	ids, err := v.c.rdb.ZRange(ctx, v.c.k.workspaces(), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("list workspaces: %w", err)
	}
	cmds := make([]*redis.MapStringStringCmd, 0, len(ids))
	_, err = v.c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, id := range ids {
			cmds = append(cmds, p.HGetAll(ctx, v.c.k.ws(id)))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read workspaces: %w", err)
	}
	out := make([]Workspace, 0, len(ids))
	for i, c := range cmds {
		if m := c.Val(); len(m) > 0 {
			out = append(out, parseWorkspace(ids[i], m))
		}
	}
	return out, nil
}
