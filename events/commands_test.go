package events_test

import (
	"strings"
	"testing"
	"time"

	"github.com/workspaced/workspaced/events"
)

var at = time.Date(2026, 3, 2, 9, 14, 3, 0, time.UTC)

func validRequested() events.WorkspaceRequested {
	return events.WorkspaceRequested{
		SchemaVersion:  events.SchemaVersion,
		ConversationID: "conv-42",
		RequestID:      "req-1",
		Tenant:         "acme",
		RequestedAt:    at,
	}
}

func validReleased() events.WorkspaceReleased {
	return events.WorkspaceReleased{
		SchemaVersion:  events.SchemaVersion,
		ConversationID: "conv-42",
		WorkspaceID:    "ws-1",
		Reason:         events.ReasonIdleTTL,
		RequestedAt:    at,
	}
}

func TestValidConversationID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		id   string
		want bool
	}{
		{"simple", "conv-42", true},
		{"single char", "a", true},
		{"digits first", "9abc", true},
		{"underscore inside", "a_b-c", true},
		{"max length", "a" + strings.Repeat("b", 127), true},
		{"too long", "a" + strings.Repeat("b", 128), false},
		{"empty", "", false},
		{"leading dash", "-abc", false},
		{"leading underscore", "_abc", false},
		{"slash", "a/b", false},
		{"dot dot", "..", false},
		{"space", "a b", false},
		{"newline", "abc\n", false},
		{"unicode", "café", false},
		{"percent", "a%2Fb", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := events.ValidConversationID(tt.id); got != tt.want {
				t.Errorf("ValidConversationID(%q) = %v, want %v", tt.id, got, tt.want)
			}
		})
	}
}

func TestWorkspaceRequestedValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		mutate  func(*events.WorkspaceRequested)
		wantErr string // substring; "" means valid
	}{
		{"valid", func(*events.WorkspaceRequested) {}, ""},
		{"empty tenant is allowed", func(c *events.WorkspaceRequested) { c.Tenant = "" }, ""},
		{"missing conversation", func(c *events.WorkspaceRequested) { c.ConversationID = "" }, "conversation_id"},
		{"bad conversation", func(c *events.WorkspaceRequested) { c.ConversationID = "../etc" }, "conversation_id"},
		{"missing request id", func(c *events.WorkspaceRequested) { c.RequestID = "" }, "request_id"},
		{"missing requested_at", func(c *events.WorkspaceRequested) { c.RequestedAt = time.Time{} }, "requested_at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := validRequested()
			tt.mutate(&c)
			checkValidateErr(t, c.Validate(), tt.wantErr)
		})
	}
}

func TestWorkspaceReleasedValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		mutate  func(*events.WorkspaceReleased)
		wantErr string
	}{
		{"valid", func(*events.WorkspaceReleased) {}, ""},
		{"empty workspace id is allowed", func(c *events.WorkspaceReleased) { c.WorkspaceID = "" }, ""},
		{"reason client", func(c *events.WorkspaceReleased) { c.Reason = events.ReasonClient }, ""},
		{"reason error", func(c *events.WorkspaceReleased) { c.Reason = events.ReasonError }, ""},
		{"reason shutdown", func(c *events.WorkspaceReleased) { c.Reason = events.ReasonShutdown }, ""},
		{"missing reason", func(c *events.WorkspaceReleased) { c.Reason = "" }, "reason"},
		{"unknown reason", func(c *events.WorkspaceReleased) { c.Reason = "bored" }, "reason"},
		{"reason wrong case", func(c *events.WorkspaceReleased) { c.Reason = "CLIENT" }, "reason"},
		{"bad conversation", func(c *events.WorkspaceReleased) { c.ConversationID = "a b" }, "conversation_id"},
		{"missing requested_at", func(c *events.WorkspaceReleased) { c.RequestedAt = time.Time{} }, "requested_at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := validReleased()
			tt.mutate(&c)
			checkValidateErr(t, c.Validate(), tt.wantErr)
		})
	}
}

func checkValidateErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("Validate() = %v, want nil", err)
	case want != "" && err == nil:
		t.Fatalf("Validate() = nil, want an error mentioning %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Fatalf("Validate() = %v, want it to mention %q", err, want)
	}
}
