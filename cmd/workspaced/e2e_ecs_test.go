package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/workspaced/workspaced/internal/fakebedrock"
	"github.com/workspaced/workspaced/store"
	"github.com/workspaced/workspaced/workers"
)

// End-to-end tests of the AWS path (issue 5): CONTAINER_MANAGER_TYPE=ecs,
// BUS=sqs. See e2e_ecs_helpers_test.go for the stack. Run them with
//
//	go test -race -run 'TestECS' ./cmd/workspaced/
//
// They need the Docker engine, `make images` and 127.0.0.1:4566 (kumo's
// EventBridge delivers there; see internal/awstest).

const bedrockModel = "anthropic.claude-3-5-sonnet-20240620-v1:0"

// HTTP execute → workspace-requested (SQS) → worker → RunTask (double) →
// task events → EventBridge rule (Terraform) → task-events (SQS) → state
// subscriber → Redis → relay over TCP to the agent in the task. A command
// streams its output; a Claude run whose stand-in CLI calls Bedrock goes
// through the sidecar, which signs it, to the fake Bedrock, which verifies
// the signature.
func TestECSExecuteEndToEnd(t *testing.T) {
	t.Parallel()
	s := startECSStack(t, ecsOptions{docker: true, bedrock: true})
	ctx := ctxFor(t, 3*time.Minute)
	const cid = "ecs-e2e"

	evs, err := s.exec(ctx, cid, `{"kind":"command","argv":["sh","-c","echo hello from the task; echo oops >&2; exit 3"]}`)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(evs), []string{"status", "status", "status", "stdout", "stderr", "done"}; !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v (%+v)", got, want, evs)
	}
	for i, st := range []string{"queued", "provisioning", "ready"} {
		if !strings.Contains(evs[i].Data, `"state":"`+st+`"`) {
			t.Errorf("status %d = %s, want %s", i, evs[i].Data, st)
		}
	}
	if evs[3].Data != "hello from the task" || evs[4].Data != "oops" || !strings.Contains(final(evs).Data, `"exit_code":3`) {
		t.Errorf("run output %+v", evs[3:])
	}

	// Redis holds the task's ENI address; the relay reached the agent there.
	conv := s.waitConversation(cid, func(c store.Conversation) bool { return c.State == store.StateReady })
	tasks := s.tasksOf(cid)
	if len(tasks) != 1 {
		t.Fatalf("%d tasks for the conversation, want 1", len(tasks))
	}
	task := tasks[0]
	if conv.Workspace != task.Arn || conv.Endpoint != "http://"+task.IP+":9000" {
		t.Errorf("binding %s at %s; the task is %s at %s", conv.Workspace, conv.Endpoint, task.Arn, task.IP)
	}
	if task.ClientToken != workers.WorkspaceToken(cid, 0) || task.StartedBy != "workspaced" || task.LastStatus != "RUNNING" {
		t.Errorf("task token %q startedBy %q status %s", task.ClientToken, task.StartedBy, task.LastStatus)
	}
	for k := range task.Env["workspace-agent"] {
		if strings.HasPrefix(k, "AWS_") || strings.HasPrefix(k, "PROXY_") {
			t.Errorf("the agent container's environment has %s", k)
		}
	}

	// A Claude run: the stand-in CLI calls InvokeModel at the sidecar
	// (ANTHROPIC_BEDROCK_BASE_URL=http://127.0.0.1:8080), unsigned.
	evs, err = s.exec(ctx, cid, `{"prompt":"hello bedrock:`+bedrockModel+`"}`)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(evs); slices.Contains(got, "status") || final(evs).Event != "done" || !strings.Contains(final(evs).Data, `"exit_code":0`) {
		t.Fatalf("claude run: %v %+v", got, evs)
	}
	types, texts, result := claudeLines(t, evs)
	if len(types) == 0 || types[0] != "system" || types[len(types)-1] != "result" {
		t.Errorf("stream-json types %v", types)
	}
	if result.IsError || result.Subtype != "success" {
		t.Errorf("result %+v", result)
	}
	if want := "bedrock status 200: " + fakebedrock.Text; !slices.Contains(texts, want) {
		t.Errorf("assistant lines %q, want %q", texts, want)
	}
	var signed []fakebedrock.Request
	for _, r := range s.bedrock.All() {
		if r.ModelID == bedrockModel && r.Operation == "invoke" {
			signed = append(signed, r)
		}
	}
	if len(signed) != 1 {
		t.Fatalf("fake Bedrock saw %d InvokeModel requests for %s (all: %+v)", len(signed), bedrockModel, s.bedrock.All())
	}
	r := signed[0]
	if !r.Verified || r.Error != "" {
		t.Fatalf("request not verified: %s", r.Error)
	}
	if auth := r.Header.Get("Authorization"); !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential="+bedrockCreds.AccessKeyID+"/") ||
		!strings.Contains(auth, "/us-east-1/bedrock/aws4_request") {
		t.Errorf("Authorization %q", auth)
	}
	if r.Host != bedrockHost+":"+strings.TrimPrefix(s.bedrock.Addr[strings.LastIndex(s.bedrock.Addr, ":"):], ":") {
		t.Errorf("signed for host %q", r.Host)
	}
	if s.bedrock.Rejected() != 0 {
		t.Errorf("fake Bedrock rejected %d requests", s.bedrock.Rejected())
	}
	if n := len(s.tasksOf(cid)); n != 1 {
		t.Errorf("%d tasks after the second run, want 1", n)
	}
}
