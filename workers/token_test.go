package workers_test

import (
	"testing"

	"github.com/workspaced/workspaced/workers"
	"github.com/workspaced/workspaced/workspace"
)

func TestWorkspaceToken(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, cid := range []string{"a", "conv-1", "A_very-long-conversation-id-0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567"} {
		for gen := range int64(3) {
			tok := workers.WorkspaceToken(cid, gen)
			if err := workspace.ValidToken(tok); err != nil {
				t.Fatalf("token of %s/%d: %v", cid, gen, err)
			}
			if tok != workers.WorkspaceToken(cid, gen) {
				t.Fatalf("token of %s/%d is not deterministic", cid, gen)
			}
			if seen[tok] {
				t.Fatalf("token %s repeats", tok)
			}
			seen[tok] = true
		}
	}
}
