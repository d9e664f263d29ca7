package events

import (
	"fmt"
	"regexp"
	"time"
)

// SchemaVersion is the command schema this build writes and the only one it
// reads. A consumer that meets another version rejects the message as
// ErrUnsupportedVersion (poison queue) rather than guessing.
const SchemaVersion = 1

// Command types, carried in the message metadata "type".
const (
	TypeWorkspaceRequested = "workspace.requested"
	TypeWorkspaceReleased  = "workspace.released"
)

// conversationIDRE is the one definition of a valid conversation ID; the
// HTTP API validates path parameters with ValidConversationID too.
var conversationIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$`)

// ValidConversationID reports whether id is a well-formed conversation ID:
// 1–128 characters of [A-Za-z0-9_-], starting with a letter or digit.
func ValidConversationID(id string) bool { return conversationIDRE.MatchString(id) }

// WorkspaceRequested asks a worker to make sure the conversation has a live
// workspace. Delivered at least once; consumers are idempotent.
type WorkspaceRequested struct {
	SchemaVersion  int    `json:"schema_version"`
	ConversationID string `json:"conversation_id"`
	// RequestID is the API request's ID (X-Request-Id), also the
	// message's correlation ID; the conversation records it, linking the
	// task-state event that answers the request back to it.
	RequestID   string    `json:"request_id"`
	Tenant      string    `json:"tenant"`
	RequestedAt time.Time `json:"requested_at"`
}

// Validate checks the fields a consumer relies on.
func (c WorkspaceRequested) Validate() error {
	if !ValidConversationID(c.ConversationID) {
		return fmt.Errorf("conversation_id %q is not a valid conversation id", c.ConversationID)
	}
	if c.RequestID == "" {
		return fmt.Errorf("request_id is required")
	}
	if c.RequestedAt.IsZero() {
		return fmt.Errorf("requested_at is required")
	}
	return nil
}

// ReleaseReason says why a workspace is released.
type ReleaseReason string

// The release reasons of docs/contracts.md §4.1.
const (
	ReasonClient   ReleaseReason = "client"
	ReasonIdleTTL  ReleaseReason = "idle_ttl"
	ReasonError    ReleaseReason = "error"
	ReasonShutdown ReleaseReason = "shutdown"
)

func (r ReleaseReason) valid() bool {
	switch r {
	case ReasonClient, ReasonIdleTTL, ReasonError, ReasonShutdown:
		return true
	}
	return false
}

// WorkspaceReleased asks a worker to save and stop a conversation's
// workspace. WorkspaceID may be empty: the worker then releases whatever the
// conversation is bound to; when set, the worker releases only that workspace
// (so a stale release cannot stop a newer workspace).
type WorkspaceReleased struct {
	SchemaVersion  int           `json:"schema_version"`
	ConversationID string        `json:"conversation_id"`
	WorkspaceID    string        `json:"workspace_id"`
	Reason         ReleaseReason `json:"reason"`
	RequestedAt    time.Time     `json:"requested_at"`
}

// Validate checks the fields a consumer relies on.
func (c WorkspaceReleased) Validate() error {
	if !ValidConversationID(c.ConversationID) {
		return fmt.Errorf("conversation_id %q is not a valid conversation id", c.ConversationID)
	}
	if !c.Reason.valid() {
		return fmt.Errorf("reason %q is not one of client, idle_ttl, error, shutdown", c.Reason)
	}
	if c.RequestedAt.IsZero() {
		return fmt.Errorf("requested_at is required")
	}
	return nil
}
