package store

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/workspaced/workspaced/workspace"
)

// ConversationState is where a conversation stands with respect to its
// workspace.
type ConversationState string

// Conversation states. A conversation is live while provisioning or ready;
// failed, lost and released are resting states from which a new request
// starts over (with a new generation).
const (
	StateNone         ConversationState = "none"         // claimed, never provisioned
	StateQueued       ConversationState = "queued"       // workspace.requested published
	StateProvisioning ConversationState = "provisioning" // bound to a starting workspace
	StateReady        ConversationState = "ready"        // bound to a healthy workspace
	StateFailed       ConversationState = "failed"       // provisioning failed; Error says why
	StateLost         ConversationState = "lost"         // its workspace stopped unexpectedly
	StateReleased     ConversationState = "released"     // its workspace was released on purpose
)

// Live reports whether the state is bound to a workspace that is starting
// or serving.
func (s ConversationState) Live() bool { return s == StateProvisioning || s == StateReady }

// Conversation is a conversation's record.
type Conversation struct {
	ID     string
	Owner  string // the API-key identifier that first used it
	Tenant string
	State  ConversationState
	// Workspace is the bound workspace's ID while live, else "".
	Workspace string
	// Endpoint is the agent endpoint, set once State is ready.
	Endpoint string
	// Generation counts bindings that ended (lost, released, failed); the
	// client token of the next start derives from it.
	Generation int64
	// Error says why the conversation failed or was lost.
	Error string
	// PreviousWorkspace is the workspace of the last binding that ended.
	PreviousWorkspace string
	RequestID         string
	RequestedAt       time.Time // of the request being served (latency metric)
	CreatedAt         time.Time
	UpdatedAt         time.Time
	// Rev increases with every change; notifications carry it.
	Rev int64
}

// Live reports whether the conversation is bound to a starting or serving
// workspace.
func (c Conversation) Live() bool { return c.State.Live() && c.Workspace != "" }

// Done reports whether a waiter for readiness can stop waiting: the
// conversation is ready, or provisioning ended without a workspace.
func (c Conversation) Done() bool {
	switch c.State {
	case StateReady, StateFailed, StateLost, StateReleased:
		return true
	}
	return false
}

// WorkspaceState is a workspace's state as workspaced tracks it.
type WorkspaceState string

// Workspace states. Stopped is absorbing.
const (
	WorkspaceProvisioning WorkspaceState = "provisioning" // started, not yet RUNNING
	WorkspaceRunning      WorkspaceState = "running"      // RUNNING, agent health not yet confirmed
	WorkspaceReady        WorkspaceState = "ready"        // agent answered /health
	WorkspaceStopped      WorkspaceState = "stopped"      // stopping or stopped: never serves again
)

// Workspace is a workspace's record.
type Workspace struct {
	ID    string
	State WorkspaceState
	// Version is the last applied task-event version, -1 before any event.
	Version    int64
	LastStatus workspace.Status
	// Conversation is the conversation the workspace was started for or
	// bound to ("" for an unclaimed pool workspace or one only known from
	// events). The conversation's own record says whether it is still bound.
	Conversation  string
	Token         string
	Tenant        string
	Pool          bool
	Generation    int64
	Endpoint      string
	StoppedReason string
	// Releasing is the release reason once a release began ("" otherwise):
	// its STOPPED event ends the binding as released rather than lost.
	Releasing string
	CreatedAt time.Time
	UpdatedAt time.Time
	// RunningAt is when its RUNNING event was applied: the readiness
	// deadline counts from it, across retries and replicas.
	RunningAt time.Time
	ReadyAt   time.Time
	StoppedAt time.Time
	// ClaimedAt is when a pool workspace was handed to its conversation.
	ClaimedAt time.Time
	// MCPDigest identifies the MCP rule set its proxy holds ("" = none
	// applied); see SetMCPRules.
	MCPDigest string
	// Restored names the saved checkpoint restored into it ("" = none);
	// see MarkRestored.
	Restored string
}

// Live reports whether the workspace is known and not stopped.
func (w Workspace) Live() bool { return w.State != "" && w.State != WorkspaceStopped }

func parseConversation(cid string, m map[string]string) Conversation {
	c := Conversation{
		ID:                cid,
		Owner:             m["owner"],
		Tenant:            m["tenant"],
		State:             ConversationState(m["state"]),
		Workspace:         m["workspace"],
		Endpoint:          m["endpoint"],
		Generation:        parseInt(m["generation"], 0),
		Error:             m["error"],
		PreviousWorkspace: m["previous_workspace"],
		RequestID:         m["request_id"],
		RequestedAt:       fromMS(m["requested_at"]),
		CreatedAt:         fromMS(m["created_at"]),
		UpdatedAt:         fromMS(m["updated_at"]),
		Rev:               parseInt(m["rev"], 0),
	}
	if c.State == "" {
		c.State = StateNone
	}
	return c
}

func parseWorkspace(wid string, m map[string]string) Workspace {
	return Workspace{
		ID:            wid,
		State:         WorkspaceState(m["state"]),
		Version:       parseInt(m["version"], -1),
		LastStatus:    workspace.Status(m["last_status"]),
		Conversation:  m["conversation"],
		Token:         m["token"],
		Tenant:        m["tenant"],
		Pool:          m["pool"] == "1",
		Generation:    parseInt(m["generation"], 0),
		Endpoint:      m["endpoint"],
		StoppedReason: m["stopped_reason"],
		Releasing:     m["releasing"],
		CreatedAt:     fromMS(m["created_at"]),
		UpdatedAt:     fromMS(m["updated_at"]),
		RunningAt:     fromMS(m["running_at"]),
		ReadyAt:       fromMS(m["ready_at"]),
		StoppedAt:     fromMS(m["stopped_at"]),
		ClaimedAt:     fromMS(m["claimed_at"]),
		MCPDigest:     m["mcp_digest"],
		Restored:      m["restored"],
	}
}

// decodeJSON parses a script's JSON snapshot of a hash ("" = absent).
func decodeJSON(s string) (map[string]string, error) {
	if s == "" {
		return nil, nil
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("decode script snapshot: %w", err)
	}
	return m, nil
}

func conversationJSON(cid, s string) (Conversation, error) {
	m, err := decodeJSON(s)
	if err != nil {
		return Conversation{}, err
	}
	return parseConversation(cid, m), nil
}

func workspaceJSON(wid, s string) (Workspace, error) {
	m, err := decodeJSON(s)
	if err != nil {
		return Workspace{}, err
	}
	return parseWorkspace(wid, m), nil
}

func parseInt(v string, def int64) int64 {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return def
	}
	return n
}
