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

// RunBegun is what BeginRun found: the conversation as claimed; Started,
// the run was recorded started on its binding (base 1, first event
// logged); RulesHeld (only when Started), the bound workspace's proxy
// holds the conversation's current MCP rules.
type RunBegun struct {
	Conversation Conversation
	Started      bool
	RulesHeld    bool
}

// RunBegin is what BeginRun records: run Run (ID, Conversation,
// OnDisconnect) of a conversation claimed by Owner of Tenant, relayed by
// Holder under the lease Lease for LeaseTTL; First is the run's first
// event (id 1), logged if the run starts at once; MaxEvents bounds the
// log as AppendRunEvents does.
type RunBegin struct {
	Run           Run
	Owner, Tenant string
	Lease, Holder string
	LeaseTTL      time.Duration
	First         RunEvent
	MaxEvents     int64
}

// BeginRun is ClaimConversation, CreateRun and AcquireLease(b.Lease) in
// one script: the one round trip of an execute before the relay (D36).
// When the conversation is ready (state ready, endpoint known) the run is
// also recorded running on that workspace with base 1 and b.First is
// logged, and hot is true: the caller gives the agent the run without
// another round trip, or, if it had to emit more events or found another
// binding first, calls StartRun again. ErrNotOwner if another owner has
// the conversation; ErrConflict if the run id is taken.
func (v Runs) BeginRun(ctx context.Context, b RunBegin) (RunBegun, error) {
	r, cid := b.Run, b.Run.Conversation
	if b.Owner == "" {
		return RunBegun{}, fmt.Errorf("begin run %s: empty owner", r.ID)
	}
	if strings.ContainsRune(b.First.Event, '\n') {
		return RunBegun{}, fmt.Errorf("begin run %s: event type %q has a newline", r.ID, b.First.Event)
	}
	keys := []string{v.c.k.conv(cid), v.c.k.run(r.ID), v.c.k.convRuns(cid), v.c.k.lease(b.Lease), v.c.k.runLog(r.ID), v.c.k.mcp(cid)}
	res, err := v.c.runStrings(ctx, scriptRunBegin, keys, b.Owner, b.Tenant, r.ID, runsPerConversation,
		b.Holder, durMS(b.LeaseTTL), b.MaxEvents, b.First.Event+"\n"+b.First.Data,
		"conversation", cid, "state", string(RunStarting), "on_disconnect", r.OnDisconnect, "seen", ms(v.c.now()))
	if err != nil {
		return RunBegun{}, fmt.Errorf("begin run %s: %w", r.ID, err)
	}
	switch res[0] {
	case "not_owner":
		return RunBegun{}, fmt.Errorf("begin run %s: claim conversation %s: %w", r.ID, cid, ErrNotOwner)
	case "conflict":
		return RunBegun{}, fmt.Errorf("begin run %s: %w", r.ID, ErrConflict)
	}
	conv, err := conversationJSON(cid, res[1])
	if err != nil {
		return RunBegun{}, err
	}
	return RunBegun{Conversation: conv, Started: res[0] == "hot", RulesHeld: len(res) > 2 && res[2] == "1"}, nil
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

// The run's log is a stream of batches: one entry holds a run of
// consecutive events, its id "<last>-<first>" (their ids), field "<k>" the
// event first+k as "<type>\n<data>" (an SSE event type has no newline).
// Entry ids increase with the events, so the entries holding events after
// n are those from id "<n+1>-0" on.

// maxBatchEvents bounds the events of one entry: the log's trim keeps
// fewer than maxLen plus this many (docs/runs.md); appendEvents bounds
// the events of one script call (its entries are appended in one round
// trip).
const (
	maxBatchEvents = 256
	appendEvents   = 4096
)

// readEntries bounds the entries one read returns; an entry holds up to
// the relay's batch of events.
const readEntries = 32

// afterID is the smallest stream id above every entry whose events are all
// at most n.
func afterID(n int64) string { return strconv.FormatInt(n, 10) + "-18446744073709551615" }

// AppendRunEvents appends evs (in increasing id order) to the run's log,
// one entry per run of consecutive ids of at most maxBatchEvents (a
// relay's batch is one run or a few), all in one script call and round
// trip (several for more than appendEvents), keeping the entries that
// hold its newest maxLen events: the log keeps at least maxLen events and
// fewer than maxLen plus one entry. An event already stored (a relay that
// took over re-sends it) is skipped, never stored twice. On an error the
// entries before the failing one may be stored, none after it.
func (v Runs) AppendRunEvents(ctx context.Context, rid string, evs []RunEvent, maxLen int64) error {
	key := []string{v.c.k.runLog(rid)}
	for len(evs) > 0 {
		n := min(len(evs), appendEvents)
		args, err := appendArgs(rid, evs[:n], maxLen)
		if err != nil {
			return err
		}
		if err := v.c.run(ctx, scriptRunAppend, key, args...).Err(); err != nil {
			return fmt.Errorf("append run %s events: %w", rid, err)
		}
		evs = evs[n:]
	}
	return nil
}

// appendArgs is run_append.lua's arguments for evs: maxLen, then per
// entry its first id, its event count and its values. The values are
// framed into one buffer and passed as slices of it: one allocation for
// the call, not one per event.
func appendArgs(rid string, evs []RunEvent, maxLen int64) ([]any, error) {
	size := 0
	for _, ev := range evs {
		if strings.IndexByte(ev.Event, '\n') >= 0 {
			return nil, fmt.Errorf("append run %s event %d: its type %q has a newline", rid, ev.ID, ev.Event)
		}
		size += len(ev.Event) + 1 + len(ev.Data)
	}
	buf := make([]byte, 0, size)
	args := make([]any, 0, len(evs)+3+2*(len(evs)/maxBatchEvents+1))
	args = append(args, maxLen)
	for len(evs) > 0 {
		n := 1
		for n < len(evs) && n < maxBatchEvents && evs[n].ID == evs[n-1].ID+1 {
			n++
		}
		args = append(args, evs[0].ID, n)
		for _, ev := range evs[:n] {
			start := len(buf)
			buf = append(buf, ev.Event...)
			buf = append(buf, '\n')
			buf = append(buf, ev.Data...)
			args = append(args, buf[start:len(buf):len(buf)])
		}
		evs = evs[n:]
	}
	return args, nil
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
		_, first, _ = entryRange(f[0].ID)
	}
	if l := lc.Val(); len(l) > 0 {
		last, _, _ = entryRange(l[0].ID)
	}
	return first, last, nil
}

// RunEvents returns the run's events after id after held by its next
// count entries at most (an entry holds a batch of consecutive events; at
// most readEntries are read at once).
func (v Runs) RunEvents(ctx context.Context, rid string, after int64, count int64) ([]RunEvent, error) {
	msgs, err := v.c.rdb.XRangeN(ctx, v.c.k.runLog(rid), strconv.FormatInt(after+1, 10), "+", min(count, readEntries)).Result()
	if err != nil {
		return nil, fmt.Errorf("read run %s events: %w", rid, err)
	}
	out, err := runEvents(msgs, after)
	if err != nil {
		return nil, fmt.Errorf("read run %s events: %w", rid, err)
	}
	return out, nil
}

// WaitRunEvents blocks up to block for events after id after and returns
// them, as RunEvents does (none when block passed).
func (v Runs) WaitRunEvents(ctx context.Context, rid string, after int64, count int64, block time.Duration) ([]RunEvent, error) {
	res, err := v.c.rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{v.c.k.runLog(rid), afterID(after)}, Count: min(count, readEntries), Block: block}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("wait for run %s events: %w", rid, err)
	}
	var msgs []redis.XMessage
	for _, s := range res {
		msgs = append(msgs, s.Messages...)
	}
	out, err := runEvents(msgs, after)
	if err != nil {
		return nil, fmt.Errorf("wait for run %s events: %w", rid, err)
	}
	return out, nil
}

// entryRange parses an entry id "<last>-<first>".
func entryRange(id string) (last, first int64, err error) {
	l, f, ok := strings.Cut(id, "-")
	if ok {
		if last, err = strconv.ParseInt(l, 10, 64); err == nil {
			first, err = strconv.ParseInt(f, 10, 64)
		}
	}
	if !ok || err != nil || first < 1 || first > last {
		return 0, 0, fmt.Errorf("run log entry id %q is not <last>-<first>", id)
	}
	return last, first, nil
}

// runEvents splits entries into their events, keeping those after id
// after.
func runEvents(msgs []redis.XMessage, after int64) ([]RunEvent, error) {
	var out []RunEvent
	for _, m := range msgs {
		last, first, err := entryRange(m.ID)
		if err != nil {
			return nil, err
		}
		for id := max(first, after+1); id <= last; id++ {
			v, ok := m.Values[strconv.FormatInt(id-first, 10)].(string)
			if !ok {
				return nil, fmt.Errorf("run log entry %s lacks event %d", m.ID, id)
			}
			ev := RunEvent{ID: id}
			ev.Event, ev.Data, _ = strings.Cut(v, "\n")
			out = append(out, ev)
		}
	}
	return out, nil
}
