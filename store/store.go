package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Errors returned by the store; test with errors.Is.
var (
	// ErrNotFound: no such conversation or workspace.
	ErrNotFound = errors.New("not found")
	// ErrNotOwner: the conversation belongs to another owner. The HTTP API
	// answers it like ErrNotFound so IDs of others do not leak.
	ErrNotOwner = errors.New("conversation belongs to another owner")
	// ErrConflict: a compare-and-set lost: the conversation is bound to
	// another workspace, its generation moved on, or it is still live.
	ErrConflict = errors.New("state conflict")
	// ErrWorkspaceStopped: the workspace has stopped; it never comes back.
	ErrWorkspaceStopped = errors.New("workspace stopped")
)

// DefaultPrefix is the key prefix when Options.Prefix is empty. It is
// the prefix every deployment has used so far (REDIS_KEY_PREFIX's old
// default); see docs/decisions.md.
const DefaultPrefix = "ws:"

// DefaultTombstoneTTL is how long a stopped workspace's record is kept so
// late events for it stay stale. EventBridge retries for 24 h.
const DefaultTombstoneTTL = 48 * time.Hour

// Options configures a Store. The zero value is usable.
type Options struct {
	// Prefix starts every key and channel name, so several deployments can
	// share one Redis. On Redis Cluster it must contain a hash tag (for
	// example "{ws}:"): scripts touch keys they derive from the prefix, so
	// all keys must live in one slot. Default DefaultPrefix.
	Prefix string
	// Now is the clock for every timestamp the store writes and every expiry
	// it judges (locks, stream leases, idle cutoffs). Default time.Now.
	Now func() time.Time
	// TombstoneTTL is how long a stopped workspace is remembered. Default
	// DefaultTombstoneTTL.
	TombstoneTTL time.Duration
}

// Store is the Redis state of workspaced: one client shared by its views,
// each a part of the state with the operations on it. Consumers declare
// interfaces for the operations they use; a Store (through its embedded
// views) satisfies all of them. Safe for concurrent use.
type Store struct {
	Conversations
	Events
	Pool
	Leases
	Activity
	Runs
	c *core
}

// core is what every view shares: the client, the key schema under the
// prefix, the clock.
type core struct {
	rdb       redis.UniversalClient
	k         keys
	now       func() time.Time
	tombstone time.Duration
	applies   *applyBatcher
}

// New returns a Store on rdb. The caller owns rdb and closes it after the
// Store is no longer used.
func New(rdb redis.UniversalClient, opts Options) *Store {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.TombstoneTTL <= 0 {
		opts.TombstoneTTL = DefaultTombstoneTTL
	}
	c := &core{rdb: rdb, k: keys{opts.Prefix}, now: opts.Now, tombstone: opts.TombstoneTTL, applies: &applyBatcher{}}
	return &Store{
		Conversations: Conversations{c},
		Events:        Events{c},
		Pool:          Pool{c},
		Leases:        Leases{c},
		Activity:      Activity{c},
		Runs:          Runs{c},
		c:             c,
	}
}

// Ping checks that Redis answers (for readiness probes).
func (s *Store) Ping(ctx context.Context) error {
	if err := s.c.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping redis: %w", err)
	}
	return nil
}

//go:embed lua/*.lua
var luaFS embed.FS

// keyHelpersMarker is the line of lua/prelude.lua that the generated key
// helpers replace.
const keyHelpersMarker = "-- @key-helpers@"

// scriptSource is lua/<name>.lua behind the shared prelude, whose marker
// line is replaced by the key helpers generated from the schema.
func scriptSource(name string) (string, error) {
	prelude, err := luaFS.ReadFile("lua/prelude.lua")
	if err != nil {
		return "", fmt.Errorf("read prelude: %w", err)
	}
	if !strings.Contains(string(prelude), keyHelpersMarker) {
		return "", fmt.Errorf("lua/prelude.lua lacks the line %q", keyHelpersMarker)
	}
	body, err := luaFS.ReadFile("lua/" + name + ".lua")
	if err != nil {
		return "", fmt.Errorf("read script %s: %w", name, err)
	}
	head := strings.Replace(string(prelude), keyHelpersMarker, luaKeyHelpers(), 1)
	return head + "\n" + string(body), nil
}

// script loads a script; the scripts are embedded, so a failure is a
// build defect and panics when the package loads.
func script(name string) *redis.Script {
	src, err := scriptSource(name)
	if err != nil {
		panic(err)
	}
	return redis.NewScript(src)
}

var (
	scriptClaim       = script("claim")
	scriptQueued      = script("queued")
	scriptLockAcquire = script("lock_acquire")
	scriptLockRelease = script("lock_release")
	scriptBind        = script("bind")
	scriptApply       = script("apply")
	scriptReady       = script("ready")
	scriptSettle      = script("settle")
	scriptReleasing   = script("releasing")
	scriptTouch       = script("touch")
	scriptStreamStart = script("stream_start")
	scriptStreamEnd   = script("stream_end")
	scriptIdle        = script("idle")
	scriptUsed        = script("used")
	scriptRestored    = script("restored")

	scriptPoolReserve   = script("pool_reserve")
	scriptPoolUnreserve = script("pool_unreserve")
	scriptPoolAdd       = script("pool_add")
	scriptPoolClaim     = script("pool_claim")
	scriptPoolUnclaim   = script("pool_unclaim")
	scriptPoolActivate  = script("pool_activate")
	scriptPoolRetire    = script("pool_retire")
	scriptMCPSet        = script("mcp_set")
	scriptRulesApplied  = script("rules_applied")
	scriptAdopt         = script("adopt")
	scriptEndpoint      = script("endpoint")
	scriptDeadBinding   = script("dead_binding")
	scriptRunCreate     = script("run_create")
	scriptRunEnd        = script("run_end")
	scriptRunAppend     = script("run_append")
	scriptRunBegin      = script("run_begin")
)

// run executes sc with the conventional leading arguments (prefix, now ms).
func (s *core) run(ctx context.Context, sc *redis.Script, keys []string, args ...any) *redis.Cmd {
	all := append([]any{s.k.prefix, ms(s.now())}, args...)
	return sc.Run(ctx, s.rdb, keys, all...)
}

// runStrings runs sc and returns its reply as strings (scripts here reply
// with flat arrays of strings).
func (s *core) runStrings(ctx context.Context, sc *redis.Script, keys []string, args ...any) ([]string, error) {
	return s.run(ctx, sc, keys, args...).StringSlice()
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v string) time.Time {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n == 0 {
		return time.Time{}
	}
	return time.UnixMilli(n)
}

func durMS(d time.Duration) int64 {
	if n := d.Milliseconds(); n > 0 {
		return n
	}
	return 1
}
