package workers

import (
	"context"
	"time"

	"github.com/workspaced/workspaced/store"
)

// The store operations each consumer needs, declared here (consumer side);
// *store.Store satisfies all of them. The record types are the store's.

// ProvisionStore is what the workspace.requested consumer needs.
type ProvisionStore interface {
	Conversation(ctx context.Context, cid string) (store.Conversation, error)
	AcquireProvisionLock(ctx context.Context, cid, holder string, ttl time.Duration) (bool, error)
	ReleaseProvisionLock(ctx context.Context, cid, holder string) (bool, error)
	BindProvisioning(ctx context.Context, b store.Binding) (store.Conversation, error)
	MarkFailed(ctx context.Context, cid, reason string) (store.Conversation, error)
}

// ReleaseStore is what the workspace.released consumer needs.
type ReleaseStore interface {
	Conversation(ctx context.Context, cid string) (store.Conversation, error)
	MarkReleasing(ctx context.Context, wid, reason string) (bool, error)
	Unbind(ctx context.Context, cid, wid string) (store.Conversation, error)
}

// StateStore is what the task-state subscriber needs.
type StateStore interface {
	ApplyTaskState(ctx context.Context, ev store.TaskState) (store.ApplyResult, error)
	MarkReady(ctx context.Context, wid, endpoint string) (store.ReadyResult, error)
	FailWorkspace(ctx context.Context, cid, wid, reason string) (store.Conversation, error)
}
