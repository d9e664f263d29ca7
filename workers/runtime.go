// Package workers holds the consumers behind the API: the workspace.requested
// and workspace.released command consumers, the task-state subscriber that
// turns runtime events into Redis state, and the background loops (warm
// pool, idle GC, orphan reaper, reconciler).
//
// Workers never know which runtime or bus they run on: they see the Runtime
// interface below and Watermill messages.
package workers

import (
	"context"
	"net/http"

	"github.com/workspaced/workspaced/workspace"
)

// Runtime starts and stops workspaces: the Docker engine locally, ECS
// RunTask/StopTask in AWS. Implementations are safe for concurrent use.
type Runtime interface {
	// Start starts a workspace, idempotently by spec.Token: a second call
	// with the same token returns the first workspace. It returns as soon as
	// the runtime accepted the request; readiness arrives as a task-state
	// event. Errors wrap workspace.ErrCapacity (retryable) or are
	// workspace.Terminal.
	Start(ctx context.Context, spec workspace.StartSpec) (workspace.Info, error)
	// Stop stops and removes the workspace. Stopping a workspace that is
	// already gone is not an error.
	Stop(ctx context.Context, id, reason string) error
	// Inspect reports the workspace's current state, or workspace.ErrNotFound.
	Inspect(ctx context.Context, id string) (workspace.Info, error)
	// List returns every workspace this runtime manages (by label, tag or
	// startedBy), including ones Redis does not know about.
	List(ctx context.Context) ([]workspace.Info, error)
	// Transport returns an HTTP transport that reaches the agent at endpoint
	// (an Info.Endpoint).
	Transport(endpoint string) (http.RoundTripper, error)
}
