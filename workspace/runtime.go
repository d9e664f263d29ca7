package workspace

import (
	"context"
	"net/http"

	"github.com/workspaced/workspaced/proxy/mcprule"
)

// Runtime is the one contract every workspace runtime satisfies: the
// Docker engine locally, ECS RunTask/StopTask in AWS. The workers consume
// it and runtime/runtimetest checks every implementation against it.
//
// Like a Nomad task driver, a runtime owns the per-workspace state that
// must survive a restart of the backend and a loss of Redis: whom a
// workspace serves (its claim record) and the MCP rules of its credential
// proxy. Each runtime keys that state itself (Docker by start token on the
// host, ECS by task tags and the task's sidecar) and finds it again in
// Recover. Implementations are safe for concurrent use.
type Runtime interface {
	// Start starts a workspace, idempotently by spec.Token: a second call
	// with the same token returns the first workspace. It returns as soon
	// as the runtime accepted the request; readiness arrives as a
	// task-state event. Errors wrap ErrCapacity (retryable) or are
	// Terminal.
	Start(ctx context.Context, spec StartSpec) (Info, error)
	// Stop stops and removes the workspace, with everything the runtime
	// keeps for it (claim record, rules). Stopping a workspace that is
	// already gone is not an error.
	Stop(ctx context.Context, id, reason string) error
	// Inspect reports the workspace's current state, or ErrNotFound.
	Inspect(ctx context.Context, id string) (Info, error)
	// List returns every workspace this runtime manages (by label, tag or
	// startedBy), including ones Redis does not know about.
	List(ctx context.Context) ([]Info, error)
	// Transport returns an HTTP transport that reaches the agent at
	// endpoint (an Info.Endpoint).
	Transport(endpoint string) (http.RoundTripper, error)

	// RecordClaim records (or replaces) ws's claim where the workspace
	// cannot reach it. Idempotent.
	RecordClaim(ctx context.Context, ws Info, c Claim) error
	// ReadClaim returns ws's claim; false if it has none (never claimed,
	// gone, or stopped).
	ReadClaim(ctx context.Context, ws Info) (Claim, bool, error)
	// SetProxyRules replaces the MCP header rules of ws's credential
	// proxy and keeps them where Recover finds them again. The rules are
	// secrets: implementations never log their header values.
	SetProxyRules(ctx context.Context, ws Info, rules []mcprule.Rule) error
	// Recover re-attaches to the workspaces an earlier instance of the
	// runtime left running (Docker: re-opens their proxy listeners with
	// their persisted rules) and reports how many it re-attached. It is
	// idempotent and changes nothing in Redis. Only the process that
	// starts workspaces may call it when Capabilities().HostProxies is set.
	Recover(ctx context.Context) (int, error)
	// PruneClaims removes the claim records (and rules) of workspaces that
	// no longer exist and reports how many it removed; zero where records
	// die with their workspace (ECS task tags).
	PruneClaims(ctx context.Context) (int, error)
	// Capabilities says how this runtime differs where the contract lets
	// it.
	Capabilities() Capabilities
}

// Capabilities are the ways a runtime may legitimately differ. Callers
// branch on these values, never on the runtime's type.
type Capabilities struct {
	// HostProxies: the workspaces' credential proxies run inside the
	// process that started them (Docker's in-process proxy, one Unix
	// socket per workspace), so exactly one process per host starts
	// workspaces and calls Recover; another would take their sockets.
	// False on ECS, where each task has its proxy sidecar.
	HostProxies bool
	// LocalEvents: the runtime's own event stream (the Docker engine's)
	// must be published as task-state events by the backend; false where
	// the platform delivers them (ECS through EventBridge).
	LocalEvents bool
}
