package ecs_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/aws/smithy-go"

	"github.com/workspaced/workspaced/internal/awsrules"
	"github.com/workspaced/workspaced/internal/ecsdouble"
	"github.com/workspaced/workspaced/internal/iampolicy"
	"github.com/workspaced/workspaced/workspace"
)

// iamFixture is a runtime whose every ECS call is authorized against the
// backend role's policy as terraform/modules/security writes it; mutate,
// when set, changes the rendered policy first (to show a test fails when a
// statement is missing).
func iamFixture(t *testing.T, mutate func(*iampolicy.Policy)) *fixture {
	t.Helper()
	const region, account, family = "us-east-1", "000000000000", "workspace-agent"
	cluster := "wsd-iam-" + token(t)[3:11]
	env := awsrules.Env{
		Region: region, Account: account, Family: family,
		Cluster:          "arn:aws:ecs:" + region + ":" + account + ":cluster/" + cluster,
		ExecutionRoleArn: awsrules.RoleARN(awsrules.Env{Account: account}, "wsd-test-task-execution"),
	}
	backend, err := awsrules.Backend(env)
	if err != nil {
		t.Fatalf("render the backend policy from terraform/: %v", err)
	}
	if mutate != nil {
		mutate(&backend.Policy)
	}
	return newFixture(t, ecsdouble.Options{
		Cluster: cluster, Region: region, Account: account, Family: family,
		ExecutionRoleArn: env.ExecutionRoleArn,
		IAM: map[string]iampolicy.Identity{ecsdouble.AccessKeyID: {
			ARN:      "arn:aws:sts::" + account + ":assumed-role/wsd-test-backend-task/task",
			Policies: []iampolicy.Named{backend},
		}},
	})
}

// Every call the runtime makes on its own cluster is allowed by the
// Terraform policy: RunTask with its tags and the execution role passed,
// DescribeTasks, ListTasks, the claim's TagResource long after RunTask,
// StopTask.
func TestIAMTerraformPolicyAllowsTheRuntime(t *testing.T) {
	t.Parallel()
	f := iamFixture(t, nil)
	ctx := testCtx(t)
	info, err := f.rt.Start(ctx, workspace.StartSpec{Token: token(t), Pool: true})
	if err != nil {
		t.Fatalf("Start (RunTask, tags at launch, PassRole): %v", err)
	}
	if _, err := f.rt.List(ctx); err != nil {
		t.Fatalf("List (ListTasks, DescribeTasks): %v", err)
	}
	claim := workspace.Claim{Conversation: "conv-iam", Owner: "k_0123abcd", Tenant: "acme", Generation: 1}
	if err := f.rt.RecordClaim(ctx, info, claim); err != nil {
		t.Fatalf("RecordClaim (TagResource after RunTask): %v", err)
	}
	if got, ok, err := f.rt.ReadClaim(ctx, info); err != nil || !ok || got != claim {
		t.Fatalf("ReadClaim = %+v %v %v", got, ok, err)
	}
	if err := f.rt.Stop(ctx, info.ID, "done"); err != nil {
		t.Fatalf("Stop (StopTask): %v", err)
	}
	if denied := f.d.Denied(); len(denied) > 0 {
		t.Fatalf("IAM denied %v", denied)
	}
}

// Without the statement that allows tagging a running task, every warm
// claim fails as AWS fails it: AccessDeniedException naming the caller,
// ecs:TagResource and the task. (The first wave's policy allowed
// ecs:TagResource only with ecs:CreateAction = RunTask.)
func TestIAMClaimNeedsTagResourceOnRunningTasks(t *testing.T) {
	t.Parallel()
	f := iamFixture(t, func(p *iampolicy.Policy) {
		var kept []iampolicy.Statement
		for _, st := range p.Statement {
			if st.Sid != "TagClaimedTasks" {
				kept = append(kept, st)
			}
		}
		if len(kept) == len(p.Statement) {
			t.Fatal("the backend policy has no TagClaimedTasks statement to remove")
		}
		p.Statement = kept
	})
	ctx := testCtx(t)
	info, err := f.rt.Start(ctx, workspace.StartSpec{Token: token(t), Pool: true})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = f.rt.Stop(testCtx(t), info.ID, "done") })
	err = f.rt.RecordClaim(ctx, info, workspace.Claim{Conversation: "c", Owner: "k_0123abcd", Generation: 1})
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "AccessDeniedException" {
		t.Fatalf("RecordClaim = %v, want AccessDeniedException", err)
	}
	for _, want := range []string{"is not authorized to perform: ecs:TagResource", info.ID, "assumed-role/wsd-test-backend-task"} {
		if !strings.Contains(api.ErrorMessage(), want) {
			t.Errorf("message %q lacks %q", api.ErrorMessage(), want)
		}
	}
}

// A call on another cluster's task, and a key the double does not know,
// are denied.
func TestIAMDeniesOutsideTheCluster(t *testing.T) {
	t.Parallel()
	f := iamFixture(t, nil)
	ctx := testCtx(t)
	other := "arn:aws:ecs:us-east-1:000000000000:task/another-cluster/0123456789abcdef0123456789abcdef"
	err := f.rt.RecordClaim(ctx, workspace.Info{ID: other}, workspace.Claim{Conversation: "c", Owner: "k", Generation: 1})
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "AccessDeniedException" {
		t.Fatalf("TagResource on another cluster's task = %v, want AccessDeniedException", err)
	}
}
