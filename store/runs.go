package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RunState is where a run stands.
type RunState string

// Run states. A run is active while starting or running.
const (
	RunStarting RunState = "starting" // waiting for its turn or a ready workspace
	RunRunning  RunState = "running"  // started in the workspace's agent
	RunDone     RunState = "done"     // ended with the agent's final "done" event
	RunFailed   RunState = "failed"   // ended with a final "error" event
)

// Run is a run's record (run:{rid}).
type Run struct {
	ID           string
	Conversation string
	State        RunState
	// OnDisconnect is "cancel" when the run ends with its client, else ""
	// (the run waits for a follower up to the detached TTL).
	OnDisconnect string
	// Workspace and Endpoint are the agent the run was started in.
	Workspace string
	Endpoint  string
	// Base is the number of the run's events before the agent's first:
	// the agent's event n is the run's event Base+n.
	Base int64
	// Seen is when a client last had a stream of the run open.
	Seen time.Time
	// Cancel is set when a client asked to cancel the run.
	Cancel bool
	// ExitCode and Error describe the end: the done event's exit code, or
	// the final error event's code.
	ExitCode  int
	Error     string
	CreatedAt time.Time
	UpdatedAt time.Time
	EndedAt   time.Time
}

// Active reports whether the run has not ended.
func (r Run) Active() bool { return r.State == RunStarting || r.State == RunRunning }

// RunEvent is one event of a run's log: its id (increasing from 1 within
// the run), type and data.
type RunEvent struct {
	ID    int64
	Event string
	Data  string
}

// errStreamIDTooSmall is what Redis answers an XADD whose id is not above
// the stream's last one; AppendRunEvents skips such events (a relay that
// took over re-sends what was already stored).
const errStreamIDTooSmall = "equal or smaller than the target stream top item"

// runsPerConversation is how many runs GET /runs lists per conversation.
const runsPerConversation = 50

// CreateRun records a new run in state starting, lists it under its
// conversation and among the active runs. It returns ErrConflict if the
// id is taken.
func (v Runs) CreateRun(ctx context.Context, r Run) error {
	args := []any{r.ID, runsPerConversation,
		"conversation", r.Conversation, "state", string(RunStarting), "on_disconnect", r.OnDisconnect, "seen", ms(v.c.now())}
	n, err := v.c.run(ctx, scriptRunCreate, []string{v.c.k.run(r.ID), v.c.k.convRuns(r.Conversation)}, args...).Int()
	if err != nil {
		return fmt.Errorf("create run %s: %w", r.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("create run %s: %w", r.ID, ErrConflict)
	}
	return nil
}

// StartRun records that the run was started in the agent at endpoint of
// workspace wid, its agent events numbered after base.
func (v Runs) StartRun(ctx context.Context, rid, wid, endpoint string, base int64) error {
	err := v.c.rdb.HSet(ctx, v.c.k.run(rid), "state", string(RunRunning), "workspace", wid, "endpoint", endpoint,
		"base", base, "updated_at", ms(v.c.now())).Err()
	if err != nil {
		return fmt.Errorf("start run %s: %w", rid, err)
	}
	return nil
}

// SeenRun records that a client has a stream of the run open now.
func (v Runs) SeenRun(ctx context.Context, rid string) error {
	if err := v.c.rdb.HSet(ctx, v.c.k.run(rid), "seen", ms(v.c.now())).Err(); err != nil {
		return fmt.Errorf("mark run %s seen: %w", rid, err)
	}
	return nil
}

// CancelRun records that a client asked to cancel the run; its relayer
// acts on it.
func (v Runs) CancelRun(ctx context.Context, rid string) error {
	if err := v.c.rdb.HSet(ctx, v.c.k.run(rid), "cancel", "1").Err(); err != nil {
		return fmt.Errorf("cancel run %s: %w", rid, err)
	}
	return nil
}

// EndRun records the run's end (state done or failed, with the exit code
// or error code), drops it from the active runs and lets its record and
// log expire after ttl.
func (v Runs) EndRun(ctx context.Context, r Run, ttl time.Duration) error {
	keys := []string{v.c.k.run(r.ID), v.c.k.runLog(r.ID), v.c.k.convRuns(r.Conversation)}
	err := v.c.run(ctx, scriptRunEnd, keys, r.ID, durMS(ttl),
		"state", string(r.State), "exit_code", r.ExitCode, "error", r.Error).Err()
	if err != nil {
		return fmt.Errorf("end run %s: %w", r.ID, err)
	}
	return nil
}

// GetRun returns run rid's record, or ErrNotFound.
func (v Runs) GetRun(ctx context.Context, rid string) (Run, error) {
	m, err := v.c.rdb.HGetAll(ctx, v.c.k.run(rid)).Result()
	if err != nil {
		return Run{}, fmt.Errorf("read run %s: %w", rid, err)
	}
	if len(m) == 0 {
		return Run{}, fmt.Errorf("run %s: %w", rid, ErrNotFound)
	}
	return runOf(rid, m), nil
}

func runOf(rid string, m map[string]string) Run {
	num := func(f string) int64 { n, _ := strconv.ParseInt(m[f], 10, 64); return n }
	return Run{
		ID: rid, Conversation: m["conversation"], State: RunState(m["state"]), OnDisconnect: m["on_disconnect"],
		Workspace: m["workspace"], Endpoint: m["endpoint"], Base: num("base"), Seen: fromMS(m["seen"]), Cancel: m["cancel"] == "1",
		ExitCode: int(num("exit_code")), Error: m["error"],
		CreatedAt: fromMS(m["created_at"]), UpdatedAt: fromMS(m["updated_at"]), EndedAt: fromMS(m["ended_at"]),
	}
}

// ConversationRuns returns up to limit of the conversation's runs, newest
// first (runs whose records expired are left out).
func (v Runs) ConversationRuns(ctx context.Context, cid string, limit int) ([]Run, error) {
	if limit <= 0 || limit > runsPerConversation {
		limit = runsPerConversation
	}
	ids, err := v.c.rdb.ZRevRange(ctx, v.c.k.convRuns(cid), 0, int64(limit-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("list runs of %s: %w", cid, err)
	}
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	_, err = v.c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGetAll(ctx, v.c.k.run(id))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read runs of %s: %w", cid, err)
	}
	out := make([]Run, 0, len(ids))
	for i, c := range cmds {
		if m := c.Val(); len(m) > 0 {
			out = append(out, runOf(ids[i], m))
		}
	}
	return out, nil
}

// ActiveRuns returns the ids of the runs not yet ended, oldest first.
func (v Runs) ActiveRuns(ctx context.Context) ([]string, error) {
	ids, err := v.c.rdb.ZRange(ctx, v.c.k.runsActive(), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("list active runs: %w", err)
	}
	return ids, nil
}

// streamID is the Redis Streams id of run event n: "n-1" (ids start at
// 1-1, and 0-0 is not a valid id).
func streamID(n int64) string { return strconv.FormatInt(n, 10) + "-1" }

func eventNumber(id string) int64 {
	ms, _, _ := strings.Cut(id, "-")
	n, _ := strconv.ParseInt(ms, 10, 64)
	return n
}

// AppendRunEvents appends evs (in increasing id order) to the run's log in
// one round trip, trimming it to maxLen entries. Ids are explicit, so an
// event already stored (a relay that took over re-sends it) is skipped,
// never stored twice.
func (v Runs) AppendRunEvents(ctx context.Context, rid string, evs []RunEvent, maxLen int64) error {
	if len(evs) == 0 {
		return nil
	}
	key := v.c.k.runLog(rid)
	cmds := make([]*redis.StringCmd, len(evs))
	_, err := v.c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, ev := range evs {
			cmds[i] = p.XAdd(ctx, &redis.XAddArgs{Stream: key, MaxLen: maxLen, ID: streamID(ev.ID), Values: []string{"e", ev.Event, "d", ev.Data}})
		}
		return nil
	})
	if err == nil {
		return nil
	}
	for _, c := range cmds {
		if e := c.Err(); e != nil && !strings.Contains(e.Error(), errStreamIDTooSmall) {
			return fmt.Errorf("append run %s events: %w", rid, e)
		}
	}
	return nil
}

// RunLogBounds returns the ids of the first and last events the run's log
// holds (0, 0 when it is empty or gone).
func (v Runs) RunLogBounds(ctx context.Context, rid string) (first, last int64, err error) {
	key := v.c.k.runLog(rid)
	var fc, lc *redis.XMessageSliceCmd
	_, err = v.c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		fc = p.XRangeN(ctx, key, "-", "+", 1)
		lc = p.XRevRangeN(ctx, key, "+", "-", 1)
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("read run %s log bounds: %w", rid, err)
	}
	if f := fc.Val(); len(f) > 0 {
		first = eventNumber(f[0].ID)
	}
	if l := lc.Val(); len(l) > 0 {
		last = eventNumber(l[0].ID)
	}
	return first, last, nil
}

// RunEvents returns up to count events of the run's log after id after.
func (v Runs) RunEvents(ctx context.Context, rid string, after int64, count int64) ([]RunEvent, error) {
	msgs, err := v.c.rdb.XRangeN(ctx, v.c.k.runLog(rid), "("+streamID(after), "+", count).Result()
	if err != nil {
		return nil, fmt.Errorf("read run %s events: %w", rid, err)
	}
	return runEvents(msgs), nil
}

// WaitRunEvents blocks up to block for events after id after and returns
// them (none when block passed).
func (v Runs) WaitRunEvents(ctx context.Context, rid string, after int64, count int64, block time.Duration) ([]RunEvent, error) {
	res, err := v.c.rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{v.c.k.runLog(rid), streamID(after)}, Count: count, Block: block}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("wait for run %s events: %w", rid, err)
	}
	var out []RunEvent
	for _, s := range res {
		out = append(out, runEvents(s.Messages)...)
	}
	return out, nil
}

func runEvents(msgs []redis.XMessage) []RunEvent {
	out := make([]RunEvent, 0, len(msgs))
	for _, m := range msgs {
		ev := RunEvent{ID: eventNumber(m.ID)}
		ev.Event, _ = m.Values["e"].(string)
		ev.Data, _ = m.Values["d"].(string)
		out = append(out, ev)
	}
	return out
}
