package workers

import (
	"context"
	"time"

	"github.com/workspaced/workspaced/store"
	"github.com/workspaced/workspaced/workspace"
)

// The store operations each consumer needs, declared here (consumer side);
// *store.Store, which embeds the store's views (Conversations, Events,
// Pool, Leases, Activity), satisfies all of them. The record types are the
// store's. docs/redis.md lists which view each operation belongs to.

// ProvisionStore is what the workspace.requested consumer needs.
type ProvisionStore interface {
	LockStore
	Conversation(ctx context.Context, cid string) (store.Conversation, error)
	Workspace(ctx context.Context, wid string) (store.Workspace, error)
	BindProvisioning(ctx context.Context, b store.Binding) (store.Conversation, error)
	MarkFailed(ctx context.Context, cid, reason string) (store.Conversation, error)
	// Warm pool (used when ProvisionerOptions.Pool is set).
	ClaimPoolWorkspace(ctx context.Context, cid string, gen int64, requestedAt time.Time) (store.Claim, error)
	AbandonClaim(ctx context.Context, cid, wid, reason string) (store.Conversation, error)
	ActivateClaim(ctx context.Context, cid, wid string) (store.Conversation, error)
}

// ReleaseStore is what the workspace.released consumer needs.
type ReleaseStore interface {
	Conversation(ctx context.Context, cid string) (store.Conversation, error)
	MarkReleasing(ctx context.Context, wid, reason string) (bool, error)
	Unbind(ctx context.Context, cid, wid string) (store.Conversation, error)
}

// StateStore is what the task-state subscriber needs: it holds the
// conversation's provisioning lock while it personalises and marks ready.
type StateStore interface {
	LockStore
	ApplyTaskState(ctx context.Context, ev store.TaskState) (store.ApplyResult, error)
	MarkReady(ctx context.Context, wid, endpoint string) (store.ReadyResult, error)
	FailWorkspace(ctx context.Context, cid, wid, reason string) (store.Conversation, error)
	Conversation(ctx context.Context, cid string) (store.Conversation, error)
	Workspace(ctx context.Context, wid string) (store.Workspace, error)
}

// PersonaliseStore is what personalisation needs: the conversation's MCP
// rules and the record of which set a workspace's proxy holds.
type PersonaliseStore interface {
	MCPRules(ctx context.Context, cid string) (rulesJSON []byte, digest string, err error)
	MarkRulesApplied(ctx context.Context, wid, digest string) (bool, error)
	MarkRestored(ctx context.Context, wid, checkpoint string) (bool, error)
	Workspace(ctx context.Context, wid string) (store.Workspace, error)
}

// PoolStore is what the warm-pool replenisher needs.
type PoolStore interface {
	LeaseStore
	PoolCounts(ctx context.Context) (store.PoolCounts, error)
	ReservePoolSlot(ctx context.Context, reservation string, max int, ttl time.Duration) (bool, error)
	ReleasePoolSlot(ctx context.Context, reservation string) error
	AddPoolWorkspace(ctx context.Context, info workspace.Info, reservation string) (store.Workspace, error)
	PoolAvailableSince(ctx context.Context, cutoff time.Time, limit int) ([]string, error)
	RetirePoolWorkspace(ctx context.Context, wid, reason string) (bool, error)
	FollowPool(ctx context.Context) (*store.PoolFollower, error)
}

// LeaseStore elects one leader among replicas for a background loop.
type LeaseStore interface {
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	ReleaseLease(ctx context.Context, name, holder string) (bool, error)
}
