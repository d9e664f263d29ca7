package ecs_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/workspaced/workspaced/internal/ecsdouble"
	"github.com/workspaced/workspaced/workspace"
)

// TestClaimTagKeysAreTheOnesIAMAllows: RecordClaim tags a running task
// outside RunTask, and the backend's IAM policy (Terraform security module,
// statement TagClaimedTasks) allows that TagResource only for the keys in
// deploy/names.json claim_tag_keys. Every key RecordClaim sends must be
// listed there, or every warm claim is AccessDenied in AWS (the double
// enforces no IAM).
func TestClaimTagKeysAreTheOnesIAMAllows(t *testing.T) {
	t.Parallel()
	root, err := ecsdouble.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "deploy/names.json"))
	if err != nil {
		t.Fatal(err)
	}
	var n struct {
		ClaimTagKeys []string `json:"claim_tag_keys"`
	}
	if err := json.Unmarshal(b, &n); err != nil {
		t.Fatalf("parse deploy/names.json: %v", err)
	}
	if len(n.ClaimTagKeys) == 0 {
		t.Fatal("deploy/names.json has no claim_tag_keys")
	}

	f := newFixture(t, ecsdouble.Options{})
	ctx := testCtx(t)
	started, err := f.rt.Start(ctx, workspace.StartSpec{Token: token(t), Pool: true})
	if err != nil {
		t.Fatal(err)
	}
	claim := workspace.Claim{Conversation: "conv-1", Owner: "k_0123abcd", Tenant: "acme", Generation: 2}
	if err := f.rt.RecordClaim(ctx, started, claim); err != nil {
		t.Fatal(err)
	}
	reqs := f.d.Requests("TagResource")
	if len(reqs) == 0 {
		t.Fatal("RecordClaim sent no TagResource")
	}
	for _, raw := range reqs {
		var in struct {
			Tags []struct{ Key string } `json:"tags"`
		}
		if err := json.Unmarshal(raw, &in); err != nil {
			t.Fatal(err)
		}
		for _, tg := range in.Tags {
			if !slices.Contains(n.ClaimTagKeys, tg.Key) {
				t.Errorf("RecordClaim tags %q, which deploy/names.json claim_tag_keys %v (the IAM condition) does not allow", tg.Key, n.ClaimTagKeys)
			}
		}
	}
}
