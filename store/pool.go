package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/workspaced/workspaced/workspace"
)

// ErrPoolEmpty: no warm-pool workspace is available to claim.
var ErrPoolEmpty = errors.New("warm pool empty")

// PoolCounts is the warm pool's inventory.
type PoolCounts struct {
	// Starting: started, not yet ready.
	Starting int64 `json:"starting"`
	// Available: ready and unclaimed.
	Available int64 `json:"available"`
	// Claimed: handed to a conversation and still running.
	Claimed int64 `json:"claimed"`
	// Reserved: slots taken by starts under way (not yet Starting).
	Reserved int64 `json:"reserved"`
}

// Unclaimed is the number of pool workspaces nobody owns yet (what the
// pool's minimum and maximum bound).
func (c PoolCounts) Unclaimed() int64 { return c.Starting + c.Available + c.Reserved }

// PoolCounts reads the pool's inventory. Expired reservations are not
// counted.
func (v Pool) PoolCounts(ctx context.Context) (PoolCounts, error) {
	now := ms(v.c.now())
	var st, av, cl, rs *redis.IntCmd
	_, err := v.c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		st = p.ZCard(ctx, v.c.k.poolStarting())
		av = p.ZCard(ctx, v.c.k.poolAvailable())
		cl = p.ZCard(ctx, v.c.k.poolClaimed())
		rs = p.ZCount(ctx, v.c.k.poolReserved(), fmt.Sprintf("(%d", now), "+inf")
		return nil
	})
	if err != nil {
		return PoolCounts{}, fmt.Errorf("read pool counts: %w", err)
	}
	return PoolCounts{Starting: st.Val(), Available: av.Val(), Claimed: cl.Val(), Reserved: rs.Val()}, nil
}

// Inventory is PoolCounts for the API's GET /v1/pool.
func (v Pool) Inventory(ctx context.Context) (any, error) { return v.PoolCounts(ctx) }

// ReservePoolSlot takes one place in the pool for a workspace about to be
// started (reservation names it, for example its start token), if the
// unclaimed workspaces (starting + available + reserved) are fewer than
// max. Atomic, so concurrent replenishers never exceed max. The
// reservation expires after ttl unless AddPoolWorkspace takes it over
// first (a replenisher that crashed mid-start frees its slot).
func (v Pool) ReservePoolSlot(ctx context.Context, reservation string, max int, ttl time.Duration) (bool, error) {
	n, err := v.c.run(ctx, scriptPoolReserve, []string{v.c.k.poolReserved()}, reservation, max, durMS(ttl)).Int()
	if err != nil {
		return false, fmt.Errorf("reserve pool slot: %w", err)
	}
	return n == 1, nil
}

// ReleasePoolSlot gives back a reservation whose start failed.
func (v Pool) ReleasePoolSlot(ctx context.Context, reservation string) error {
	if err := v.c.run(ctx, scriptPoolUnreserve, []string{v.c.k.poolReserved()}, reservation).Err(); err != nil {
		return fmt.Errorf("release pool slot: %w", err)
	}
	return nil
}

// AddPoolWorkspace records a started warm-pool workspace (taking over
// reservation, if any): starting until MarkReady, or available at once if
// events already made it ready. ErrWorkspaceStopped if it already stopped.
func (v Pool) AddPoolWorkspace(ctx context.Context, info workspace.Info, reservation string) (Workspace, error) {
	if info.ID == "" {
		return Workspace{}, errors.New("add pool workspace: empty id")
	}
	r, err := v.c.runStrings(ctx, scriptPoolAdd, []string{v.c.k.ws(info.ID)},
		info.ID, info.Token, info.Tenant, info.Endpoint, reservation)
	if err != nil {
		return Workspace{}, fmt.Errorf("add pool workspace %s: %w", info.ID, err)
	}
	w, err := workspaceJSON(info.ID, r[1])
	if err != nil {
		return Workspace{}, err
	}
	if r[0] == "stopped" {
		return w, fmt.Errorf("add pool workspace %s: %w", info.ID, ErrWorkspaceStopped)
	}
	return w, nil
}

// Claim is what ClaimPoolWorkspace handed over.
type Claim struct {
	Workspace    Workspace
	Conversation Conversation
}

// ClaimPoolWorkspace atomically takes the oldest available pool workspace
// and binds conversation cid (at generation gen) to it: the conversation
// becomes provisioning (personalisation comes next; ActivateClaim makes it
// ready) and the workspace is claimed. No workspace is ever claimed twice.
// ErrPoolEmpty when nothing is available; ErrConflict when the
// conversation's generation moved on or it is bound to a live workspace.
func (v Pool) ClaimPoolWorkspace(ctx context.Context, cid string, gen int64, requestedAt time.Time) (Claim, error) {
	var rat any = ""
	if !requestedAt.IsZero() {
		rat = ms(requestedAt)
	}
	r, err := v.c.runStrings(ctx, scriptPoolClaim, []string{v.c.k.conv(cid)}, cid, gen, rat)
	if err != nil {
		return Claim{}, fmt.Errorf("claim pool workspace for %s: %w", cid, err)
	}
	c, err := conversationJSON(cid, r[3])
	if err != nil {
		return Claim{}, err
	}
	switch r[0] {
	case "claimed":
		w, err := workspaceJSON(r[1], r[2])
		if err != nil {
			return Claim{}, err
		}
		return Claim{Workspace: w, Conversation: c}, nil
	case "empty":
		return Claim{Conversation: c}, fmt.Errorf("claim pool workspace for %s: %w", cid, ErrPoolEmpty)
	default:
		return Claim{Conversation: c}, fmt.Errorf("claim pool workspace for %s (%s): %w", cid, r[0], ErrConflict)
	}
}

// AbandonClaim undoes cid's claim of pool workspace wid (it failed its
// health check or personalisation): the conversation returns to queued
// with the same generation and wid is marked releasing; the caller stops
// it. ErrConflict if cid is not bound to wid.
func (v Pool) AbandonClaim(ctx context.Context, cid, wid, reason string) (Conversation, error) {
	r, err := v.c.runStrings(ctx, scriptPoolUnclaim, []string{v.c.k.conv(cid), v.c.k.ws(wid)}, cid, wid, reason)
	if err != nil {
		return Conversation{}, fmt.Errorf("abandon claim of %s by %s: %w", wid, cid, err)
	}
	c, err := conversationJSON(cid, r[1])
	if err != nil {
		return Conversation{}, err
	}
	if r[0] == "conflict" {
		return c, fmt.Errorf("abandon claim of %s by %s: %w", wid, cid, ErrConflict)
	}
	return c, nil
}

// ActivateClaim makes cid ready on its claimed, personalised workspace wid
// and notifies waiters. Idempotent. ErrConflict if cid is not bound to wid;
// ErrWorkspaceStopped if wid stopped meanwhile.
func (v Pool) ActivateClaim(ctx context.Context, cid, wid string) (Conversation, error) {
	r, err := v.c.runStrings(ctx, scriptPoolActivate, []string{v.c.k.conv(cid), v.c.k.ws(wid)}, cid, wid)
	if err != nil {
		return Conversation{}, fmt.Errorf("activate claim of %s by %s: %w", wid, cid, err)
	}
	c, err := conversationJSON(cid, r[1])
	if err != nil {
		return Conversation{}, err
	}
	switch r[0] {
	case "ready", "unchanged":
		return c, nil
	case "stopped":
		return c, fmt.Errorf("activate claim of %s by %s: %w", wid, cid, ErrWorkspaceStopped)
	default:
		return c, fmt.Errorf("activate claim of %s by %s (%s): %w", wid, cid, r[0], ErrConflict)
	}
}

// PoolAvailableSince returns up to limit available pool workspaces that
// became ready at or before cutoff, oldest first (for recycling by age).
func (v Pool) PoolAvailableSince(ctx context.Context, cutoff time.Time, limit int) ([]string, error) {
	if limit <= 0 {
		limit = 100
	}
	ids, err := v.c.rdb.ZRangeByScore(ctx, v.c.k.poolAvailable(), &redis.ZRangeBy{
		Min: "-inf", Max: fmt.Sprint(ms(cutoff)), Count: int64(limit),
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("list old pool workspaces: %w", err)
	}
	return ids, nil
}

// RetirePoolWorkspace takes available workspace wid out of the inventory
// (marking it releasing with reason) so the caller can stop it. It reports
// false when wid is not available (claimed meanwhile, or gone): then it
// must not be stopped.
func (v Pool) RetirePoolWorkspace(ctx context.Context, wid, reason string) (bool, error) {
	n, err := v.c.run(ctx, scriptPoolRetire, []string{v.c.k.ws(wid)}, wid, reason).Int()
	if err != nil {
		return false, fmt.Errorf("retire pool workspace %s: %w", wid, err)
	}
	return n == 1, nil
}

// WaitPool blocks until cond holds for the pool's counts and returns them,
// or returns ctx's error. It subscribes to the pool's change channel first
// and re-reads the counts on every change: no polling.
func (v Pool) WaitPool(ctx context.Context, cond func(PoolCounts) bool) (PoolCounts, error) {
	f, err := v.FollowPool(ctx)
	if err != nil {
		return PoolCounts{}, err
	}
	defer f.Close()
	for {
		c, err := v.PoolCounts(ctx)
		if err != nil {
			return PoolCounts{}, err
		}
		if cond(c) {
			return c, nil
		}
		if err := f.Next(ctx); err != nil {
			return c, err
		}
	}
}

// PoolFollower reports changes of the pool's inventory. Create it with
// FollowPool; Close it. Not safe for concurrent use.
type PoolFollower struct {
	ps *redis.PubSub
	ch <-chan *redis.Message
}

// FollowPool subscribes to the pool's change notifications. It returns
// once the subscription is confirmed, so a change after it returns is
// never missed.
func (v Pool) FollowPool(ctx context.Context) (*PoolFollower, error) {
	ps := v.c.rdb.Subscribe(ctx, v.c.k.poolChannel())
	if _, err := ps.Receive(ctx); err != nil {
		_ = ps.Close()
		return nil, fmt.Errorf("follow pool: %w", err)
	}
	return &PoolFollower{ps: ps, ch: ps.Channel(redis.WithChannelSize(16))}, nil
}

// Next blocks until the pool changed (at least once since the last call),
// or ctx ends. Changes that arrive together are coalesced.
func (f *PoolFollower) Next(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return fmt.Errorf("follow pool: %w", ctx.Err())
	case _, ok := <-f.ch:
		if !ok {
			return fmt.Errorf("follow pool: %w", errWatchClosed)
		}
	}
	for { // coalesce what is already queued
		select {
		case <-f.ch:
		default:
			return nil
		}
	}
}

// C is the raw notification channel, for callers that select on it with
// other events (a timer).
func (f *PoolFollower) C() <-chan *redis.Message { return f.ch }

// Close unsubscribes. Safe to call twice.
func (f *PoolFollower) Close() error {
	if err := f.ps.Close(); err != nil && !errors.Is(err, redis.ErrClosed) {
		return fmt.Errorf("close pool follower: %w", err)
	}
	return nil
}
