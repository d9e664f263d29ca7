package workspace

import "time"

// Claim is the durable record of whom a workspace serves. Runtime labels
// and RunTask tags are fixed when a workspace starts, and a warm-pool
// workspace is claimed later, so each runtime keeps the record where the
// workspace itself cannot reach it (a host-side file on Docker, task tags on
// ECS). The reconciler restores Redis from it after Redis is lost. Owner is
// the API key's public identifier (a hash), never a secret.
type Claim struct {
	Conversation string `json:"conversation"`
	Owner        string `json:"owner,omitempty"`
	Tenant       string `json:"tenant,omitempty"`
	Generation   int64  `json:"generation"`
}

// SaveTarget names the workspace whose files are saved before it stops,
// and the conversation they are kept for.
type SaveTarget struct {
	// Tenant owns the conversation; stored files are keyed by it.
	Tenant       string
	Conversation string
	Workspace    string
	// Endpoint reaches the agent (GET /files streams the workspace tar).
	Endpoint string
	// Reason is why the workspace is released (events.ReleaseReason).
	Reason string
}

// RestoreTarget names the fresh workspace a conversation's saved files go
// into before it serves.
type RestoreTarget struct {
	Tenant       string
	Conversation string
	Workspace    string
	// Endpoint reaches the agent (PUT /files takes the workspace tar).
	Endpoint string
}

// Checkpoint describes a save of a conversation's files (and Claude
// session) that was restored into a workspace.
type Checkpoint struct {
	// ID names the save: its creation time, "20060102T150405.000000000Z".
	ID        string
	CreatedAt time.Time
	// Reason is why it was made: a release reason or "checkpoint".
	Reason string
	// Workspace is the workspace the files came from.
	Workspace string
}
