package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	dockerclient "github.com/docker/docker/client"

	"github.com/workspaced/workspaced/events"
	"github.com/workspaced/workspaced/events/bus/bustest"
	"github.com/workspaced/workspaced/internal/ecsdouble"
	"github.com/workspaced/workspaced/internal/fakebedrock"
	"github.com/workspaced/workspaced/sse"
	"github.com/workspaced/workspaced/store"
	"github.com/workspaced/workspaced/workers"
	"github.com/workspaced/workspaced/workspace"
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
	if got, want := names(evs), []string{"run", "status", "status", "status", "stdout", "stderr", "done"}; !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v (%+v)", got, want, evs)
	}
	for i, st := range []string{"queued", "provisioning", "ready"} {
		if !strings.Contains(evs[i+1].Data, `"state":"`+st+`"`) {
			t.Errorf("status %d = %s, want %s", i, evs[i+1].Data, st)
		}
	}
	if evs[4].Data != "hello from the task" || evs[5].Data != "oops" || !strings.Contains(final(evs).Data, `"exit_code":3`) {
		t.Errorf("run output %+v", evs[4:])
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
	if _, port, _ := net.SplitHostPort(s.bedrock.Addr); r.Host != net.JoinHostPort(bedrockHost, port) {
		t.Errorf("signed for host %q, want the real Bedrock host name", r.Host)
	}
	if s.bedrock.Rejected() != 0 {
		t.Errorf("fake Bedrock rejected %d requests", s.bedrock.Rejected())
	}

	// No credential reaches the workspace: not in a run's environment, the
	// agent's (PID 1 of its container), or any process it can see.
	evs, err = s.exec(ctx, cid, `{"kind":"command","argv":["sh","-c","env; tr '\\0' '\\n' < /proc/1/environ; ps -o pid,args"]}`)
	if err != nil || final(evs).Event != "done" {
		t.Fatalf("environment run: %v %+v", err, evs)
	}
	out := stdout(evs)
	if !strings.Contains(out, "WORKSPACE_LISTEN_PORT=9000") {
		t.Errorf("the run did not show the agent's environment:\n%s", out)
	}
	for _, secret := range []string{bedrockCreds.AccessKeyID, bedrockCreds.SecretAccessKey, "PROXY_ADMIN_TOKEN", "AWS_SECRET_ACCESS_KEY", "credential-proxy"} {
		if strings.Contains(out, secret) {
			t.Errorf("the workspace sees %q:\n%s", secret, out)
		}
	}
	if n := len(s.tasksOf(cid)); n != 1 {
		t.Errorf("%d tasks after three runs, want 1", n)
	}
}

// execResult is the outcome of an execute run in the background.
type execResult struct {
	evs []sse.Event
	err error
}

func (s *ecsStack) execAsync(ctx context.Context, cid, body string) <-chan execResult {
	ch := make(chan execResult, 1)
	go func() {
		evs, err := s.exec(ctx, cid, body)
		ch <- execResult{evs, err}
	}()
	return ch
}

func recvExec(ctx context.Context, t *testing.T, ch <-chan execResult) []sse.Event {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("execute: %v", r.err)
		}
		return r.evs
	case <-ctx.Done():
		t.Fatal("execute did not end")
		return nil
	}
}

// Duplicated and reordered task events (delivery is at least once and
// unordered) never move state backwards. Every event is delivered twice;
// then a task's whole life is held and delivered in reverse, so STOPPED
// arrives before RUNNING: the conversation ends lost and stays lost, the
// workspace stopped at the highest version.
func TestECSDuplicateAndReorderedEvents(t *testing.T) {
	t.Parallel()
	s := startECSStack(t, ecsOptions{docker: true})
	ctx := ctxFor(t, 3*time.Minute)
	s.setEventHook(func(ev ecsdouble.Event) []ecsdouble.Event { return []ecsdouble.Event{ev, ev} })

	// Duplicates on the way up: one workspace, ready, serving.
	evs, err := s.exec(ctx, "ecs-dup", `{"kind":"command","argv":["echo","once"]}`)
	if err != nil || stdout(evs) != "once\n" || final(evs).Event != "done" {
		t.Fatalf("execute with duplicated events: %v %+v", err, evs)
	}
	ready := s.waitConversation("ecs-dup", func(c store.Conversation) bool { return c.State == store.StateReady })
	s.waitEventsHandled(ctx)
	snap, _ := s.double.Task(ready.Workspace)
	w, err := s.store.Workspace(ctx, ready.Workspace)
	if err != nil || w.State != store.WorkspaceReady || w.Version != snap.Version {
		t.Fatalf("workspace after duplicates: %+v (task version %d) %v", w, snap.Version, err)
	}
	if n := len(s.tasksOf("ecs-dup")); n != 1 {
		t.Fatalf("%d tasks, want 1", n)
	}

	// Reordered: hold everything, let the task run and die, then deliver
	// its events newest first.
	const cid = "ecs-reorder"
	states := s.followStates(ctx, cid)
	s.double.PauseEvents()
	res := s.execAsync(ctx, cid, `{"kind":"command","argv":["echo","never"]}`)
	prov := s.waitConversation(cid, func(c store.Conversation) bool { return c.State == store.StateProvisioning && c.Workspace != "" })
	arn := prov.Workspace
	if snap, err := s.double.WaitStatus(ctx, arn, "RUNNING"); err != nil || snap.LastStatus != "RUNNING" {
		t.Fatalf("task did not run: %+v %v", snap, err)
	}
	if err := s.double.ExitContainer(arn, "workspace-agent", 1); err != nil {
		t.Fatal(err)
	}
	stopped, err := s.double.WaitStatus(ctx, arn, "STOPPED")
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	s.double.ResumeEvents(func(held []ecsdouble.Event) []ecsdouble.Event {
		slices.Reverse(held)
		for _, ev := range held {
			order = append(order, fmt.Sprintf("%s v%d", ev.LastStatus, ev.Version))
		}
		return held
	})
	t.Logf("delivery order: %v", order)
	if i, j := slices.Index(order, fmt.Sprintf("STOPPED v%d", stopped.Version)), slices.IndexFunc(order, func(s string) bool { return strings.HasPrefix(s, "RUNNING ") }); i < 0 || j < 0 || i > j {
		t.Fatalf("delivery order %v does not put STOPPED before RUNNING", order)
	}

	lost := s.waitConversation(cid, func(c store.Conversation) bool { return c.State == store.StateLost })
	if lost.Workspace != "" || lost.PreviousWorkspace != arn || lost.Generation != 1 {
		t.Errorf("lost conversation %+v", lost)
	}
	evs = recvExec(ctx, t, res)
	if code := errorCode(final(evs)); code != "workspace_lost" {
		t.Errorf("waiting client got %+v, want an error event workspace_lost", final(evs))
	}
	s.waitEventsHandled(ctx) // every late RUNNING/PENDING/PROVISIONING was handled too
	w, err = s.store.Workspace(ctx, arn)
	if err != nil || w.State != store.WorkspaceStopped || w.Version != stopped.Version || w.LastStatus != "STOPPED" {
		t.Errorf("workspace after reordered events: %+v (STOPPED is v%d) %v", w, stopped.Version, err)
	}
	after, err := s.store.Conversation(ctx, cid)
	if err != nil || after.State != store.StateLost || after.Workspace != "" || after.Rev != lost.Rev {
		t.Errorf("conversation changed after STOPPED: %+v → %+v", lost, after)
	}
	seen := states.drain()
	if slices.Contains(seen, store.StateReady) || len(seen) == 0 || seen[len(seen)-1] != store.StateLost {
		t.Errorf("conversation states %s", statesString(seen))
	}
}

// A lost event: the task's RUNNING event never arrives (EventBridge gave
// up). Events alone cannot make the conversation ready (the agent is up,
// Redis says provisioning): a reconcile pass (ListTasks + DescribeTasks)
// repairs it, and the waiting client is served. A task whose RUNNING was
// lost and that then dies is settled by its STOPPED event (a higher
// version): the binding ends as lost and the waiting client learns at
// once; the next execute starts over.
func TestECSLostRunningEvent(t *testing.T) {
	t.Parallel()
	s := startECSStack(t, ecsOptions{docker: true})
	ctx := ctxFor(t, 3*time.Minute)
	s.setEventHook(func(ev ecsdouble.Event) []ecsdouble.Event {
		if ev.LastStatus == "RUNNING" {
			return nil
		}
		return []ecsdouble.Event{ev}
	})
	tw := &testWriter{t: t}
	t.Cleanup(tw.close)
	log := slog.New(slog.NewTextHandler(tw, nil))
	sub := workers.NewStateSubscriber(s.app.runtime.rt, s.app.store, nil, workers.StateOptions{Logger: log})
	rec := workers.NewReconciler(s.app.runtime.rt, s.app.store, nil, workers.ReconcilerOptions{
		Ready:  sub,
		Settle: time.Nanosecond, // the test decides the event is lost, not late
		Logger: log,
	})

	// Repaired by the reconciler.
	const cid = "ecs-lost-running"
	res := s.execAsync(ctx, cid, `{"kind":"command","argv":["echo","served"]}`)
	prov := s.waitConversation(cid, func(c store.Conversation) bool { return c.State == store.StateProvisioning && c.Workspace != "" })
	task, err := s.double.WaitStatus(ctx, prov.Workspace, "RUNNING")
	if err != nil || task.LastStatus != "RUNNING" {
		t.Fatalf("task did not run: %+v %v", task, err)
	}
	s.waitEventsHandled(ctx)
	if c, _ := s.store.Conversation(ctx, cid); c.State != store.StateProvisioning {
		t.Fatalf("without its RUNNING event the conversation is %s", c.State)
	}
	s.waitAgent(ctx, "http://"+task.IP+":9000") // the reconciler asks the agent once per pass
	rep, err := rec.Reconcile(ctx)
	if err != nil || rep.Ready != 1 {
		t.Fatalf("reconcile: %+v %v", rep, err)
	}
	ready := s.waitConversation(cid, func(c store.Conversation) bool { return c.State == store.StateReady })
	if ready.Workspace != task.Arn || ready.Endpoint != "http://"+task.IP+":9000" {
		t.Errorf("repaired binding %+v, task %s at %s", ready, task.Arn, task.IP)
	}
	if evs := recvExec(ctx, t, res); stdout(evs) != "served\n" || final(evs).Event != "done" {
		t.Errorf("waiting client after the repair: %+v", evs)
	}
	if rep, err := rec.Reconcile(ctx); err != nil || rep.Total() != 0 {
		t.Errorf("second reconcile pass repaired %+v (%v), want nothing", rep, err)
	}

	// Settled by the STOPPED event.
	const cid2 = "ecs-lost-then-stopped"
	states := s.followStates(ctx, cid2)
	res = s.execAsync(ctx, cid2, `{"kind":"command","argv":["echo","never"]}`)
	prov = s.waitConversation(cid2, func(c store.Conversation) bool { return c.State == store.StateProvisioning && c.Workspace != "" })
	arn := prov.Workspace
	if snap, err := s.double.WaitStatus(ctx, arn, "RUNNING"); err != nil || snap.LastStatus != "RUNNING" {
		t.Fatalf("task did not run: %+v %v", snap, err)
	}
	if err := s.double.ExitContainer(arn, "workspace-agent", 1); err != nil {
		t.Fatal(err)
	}
	lost := s.waitConversation(cid2, func(c store.Conversation) bool { return c.State == store.StateLost })
	if lost.Workspace != "" || lost.PreviousWorkspace != arn {
		t.Errorf("lost conversation %+v", lost)
	}
	if code := errorCode(final(recvExec(ctx, t, res))); code != "workspace_lost" {
		t.Errorf("waiting client's final event code %q, want workspace_lost", code)
	}
	if seen := states.drain(); slices.Contains(seen, store.StateReady) {
		t.Errorf("conversation states %s", statesString(seen))
	}
	// The next execute starts over with a new task (new generation, new
	// token) and is served: nothing stale was left bound.
	s.setEventHook(nil)
	evs, err := s.exec(ctx, cid2, `{"kind":"command","argv":["echo","again"]}`)
	if err != nil || stdout(evs) != "again\n" || final(evs).Event != "done" {
		t.Fatalf("execute after the loss: %v %+v", err, evs)
	}
	if tasks := s.tasksOf(cid2); len(tasks) != 2 || tasks[1].ClientToken != workers.WorkspaceToken(cid2, 1) {
		t.Errorf("tasks %+v, want a second one with the generation-1 token", tasks)
	}
}

// A worker crashed between RunTask and its Redis write; the command is
// delivered again (SQS is at least once). The start token is a function of
// (conversation, generation), so RunTask's clientToken makes the retry
// return the task already started: one task, bound and serving.
func TestECSRedeliveredCommandOneTask(t *testing.T) {
	t.Parallel()
	s := startECSStack(t, ecsOptions{docker: true})
	ctx := ctxFor(t, 3*time.Minute)
	const cid = "ecs-crashed-worker"
	tok := workers.WorkspaceToken(cid, 0)
	// What the crashed worker did: Start with the token, nothing in Redis.
	started, err := s.app.runtime.rt.Start(ctx, workspace.StartSpec{Token: tok, Conversation: cid, Tenant: "e2e"})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	// The redelivered command, and the client's execute (its own command).
	if err := s.app.bus.Commands().PublishRequested(events.WithCorrelationID(ctx, "redelivered"), events.WorkspaceRequested{
		ConversationID: cid, RequestID: "redelivered", Tenant: "e2e", RequestedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	evs, err := s.exec(ctx, cid, `{"kind":"command","argv":["echo","served"]}`)
	if err != nil || stdout(evs) != "served\n" || final(evs).Event != "done" {
		t.Fatalf("execute: %v %+v", err, evs)
	}
	conv := s.waitConversation(cid, func(c store.Conversation) bool { return c.State == store.StateReady })
	if conv.Workspace != started.ID {
		t.Errorf("bound to %s, the crashed worker started %s", conv.Workspace, started.ID)
	}
	tasks := s.tasksOf(cid)
	if len(tasks) != 1 || tasks[0].ClientToken != tok || len(s.double.Tasks()) != 1 {
		t.Fatalf("tasks %+v, want exactly one with token %s", tasks, tok)
	}
	// The worker did call RunTask again (idempotency, not luck).
	if n := counter(t, s.app.reg, "workspaced_ecs_run_task_calls_total", nil); n < 2 {
		t.Errorf("%v Start calls reached RunTask, want the crashed one and the worker's", n)
	}
}

// RunTask failures[] RESOURCE:* (no task, no event) are retried by the bus
// with backoff: one failure and the next attempt places the task. When
// capacity never comes, the router gives up, the command goes to the DLQ,
// the waiting client gets an "error" event, and no task exists.
func TestECSCapacityFailures(t *testing.T) {
	t.Parallel()
	s := startECSStack(t, ecsOptions{docker: true, env: map[string]string{"BUS_MAX_RETRIES": "2"}})
	ctx := ctxFor(t, 3*time.Minute)
	retries := func() float64 {
		return counter(t, s.app.reg, "workspaced_bus_handler_retries_total", map[string]string{"topic": events.TopicWorkspaceRequested})
	}

	s.double.FailNext("RESOURCE:CPU")
	evs, err := s.exec(ctx, "ecs-cap-once", `{"kind":"command","argv":["echo","placed"]}`)
	if err != nil || stdout(evs) != "placed\n" || final(evs).Event != "done" {
		t.Fatalf("execute after one capacity failure: %v %+v", err, evs)
	}
	if r := retries(); r < 1 {
		t.Errorf("%v retries after a capacity failure", r)
	}

	// An agent disconnect (AGENT, part of ECS's normal operation) is
	// retried like capacity, not a failed workspace.
	s.double.FailNext("AGENT")
	evs, err = s.exec(ctx, "ecs-agent-once", `{"kind":"command","argv":["echo","placed"]}`)
	if err != nil || stdout(evs) != "placed\n" || final(evs).Event != "done" {
		t.Fatalf("execute after one AGENT failure: %v %+v", err, evs)
	}

	const cid = "ecs-cap-never"
	before := retries()
	fails := make([]string, 20)
	for i := range fails {
		fails[i] = "RESOURCE:MEMORY"
	}
	s.double.FailNext(fails...)
	evs, err = s.exec(ctx, cid, `{"kind":"command","argv":["echo","unplaced"]}`)
	if err != nil {
		t.Fatal(err)
	}
	if code := errorCode(final(evs)); code != "provisioning_failed" || !strings.Contains(final(evs).Data, "RESOURCE:MEMORY") {
		t.Errorf("final event %+v, want error provisioning_failed naming RESOURCE:MEMORY", final(evs))
	}
	if slices.Contains(names(evs), "stdout") {
		t.Errorf("output without a workspace: %+v", evs)
	}
	if r := retries() - before; r != 2 {
		t.Errorf("%v retries, want BUS_MAX_RETRIES=2", r)
	}
	conv, err := s.store.Conversation(ctx, cid)
	if err != nil || conv.State != store.StateFailed || conv.Workspace != "" {
		t.Errorf("conversation %+v %v", conv, err)
	}
	if body, attrs := s.receiveDLQ(ctx, events.TopicWorkspaceRequested); !strings.Contains(body, cid) || !strings.Contains(attrs["reason_poisoned"], "RESOURCE:MEMORY") {
		t.Errorf("DLQ holds %s %v", body, attrs)
	}
	if tasks := s.tasksOf(cid); len(tasks) != 0 {
		t.Errorf("tasks for the unplaced conversation: %+v", tasks)
	}
	if n := len(s.double.Tasks()); n != 2 {
		t.Errorf("%d tasks, want only the two placed ones", n)
	}
	if n := len(s.clusterContainers()); n != 4 {
		t.Errorf("%d containers, want the placed tasks' 2 each", n)
	}
}

// ThrottlingException from ECS (a request rate above the double's bucket,
// plus injected throttles) is absorbed by the SDK's adaptive retryer:
// concurrent executes of different conversations all succeed, one task
// each.
func TestECSThrottlingAbsorbed(t *testing.T) {
	t.Parallel()
	s := startECSStack(t, ecsOptions{docker: true, double: func(o *ecsdouble.Options) { o.RateLimit, o.Burst = 4, 2 }})
	ctx := ctxFor(t, 3*time.Minute)
	s.double.ThrottleNext(3)
	const n = 4
	results := make([]<-chan execResult, n)
	for i := range n {
		results[i] = s.execAsync(ctx, fmt.Sprintf("ecs-throttle-%d", i), fmt.Sprintf(`{"kind":"command","argv":["echo","run-%d"]}`, i))
	}
	for i := range n {
		evs := recvExec(ctx, t, results[i])
		if stdout(evs) != fmt.Sprintf("run-%d\n", i) || final(evs).Event != "done" {
			t.Errorf("conversation %d: %+v", i, evs)
		}
		if tasks := s.tasksOf(fmt.Sprintf("ecs-throttle-%d", i)); len(tasks) != 1 {
			t.Errorf("conversation %d has %d tasks", i, len(tasks))
		}
	}
	throttled := 0
	for _, op := range []string{"RunTask", "DescribeTasks", "StopTask"} {
		throttled += s.double.Throttled(op)
	}
	if throttled < 3 {
		t.Errorf("%d requests throttled, want at least the 3 injected", throttled)
	}
	if m := counter(t, s.app.reg, "workspaced_ecs_throttled_attempts_total", nil); m < 3 {
		t.Errorf("runtime counted %v throttled attempts", m)
	}
}

// A message on workspace-requested that does not decode goes to
// workspace-requested-dlq at once (permanent error, no retries), and the
// consumer goes on with the next message.
func TestECSUndecodableCommandDeadLettered(t *testing.T) {
	t.Parallel()
	s := startECSStack(t, ecsOptions{noEvents: true})
	ctx := ctxFor(t, 2*time.Minute)
	bad := `{"schema_version":1,"conversation_id":"../etc"`
	bustest.SendRaw(t, s.emu.SQS, s.prefix, events.TopicWorkspaceRequested, []byte(bad))
	got, attrs := s.receiveDLQ(ctx, events.TopicWorkspaceRequested)
	if got != bad {
		t.Fatalf("DLQ holds %q, want the undecodable body", got)
	}
	if !strings.Contains(attrs["reason_poisoned"], "malformed") || attrs["topic_poisoned"] != events.TopicWorkspaceRequested {
		t.Errorf("DLQ message attributes %v", attrs)
	}
	// Retries happen before the DLQ publish: none for a permanent error.
	if r := counter(t, s.app.reg, "workspaced_bus_handler_retries_total", map[string]string{"topic": events.TopicWorkspaceRequested}); r != 0 {
		t.Errorf("%v retries of an undecodable message", r)
	}
	// The next message is processed: a task started and bound.
	const cid = "ecs-after-poison"
	if err := s.app.bus.Commands().PublishRequested(events.WithCorrelationID(ctx, "next"), events.WorkspaceRequested{
		ConversationID: cid, RequestID: "next", Tenant: "e2e", RequestedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	c := s.waitConversation(cid, func(c store.Conversation) bool { return c.State == store.StateProvisioning && c.Workspace != "" })
	if tasks := s.tasksOf(cid); len(tasks) != 1 || tasks[0].Arn != c.Workspace {
		t.Errorf("tasks %+v, binding %s", tasks, c.Workspace)
	}
}

// DELETE → workspace.released (SQS) → worker → StopTask → the task stops
// (containers removed) → its STOPPED event reaches Redis: binding cleared
// as released, workspace stopped.
func TestECSReleaseStopsTask(t *testing.T) {
	t.Parallel()
	s := startECSStack(t, ecsOptions{docker: true})
	ctx := ctxFor(t, 3*time.Minute)
	const cid = "ecs-release"
	if evs, err := s.exec(ctx, cid, `{"kind":"command","argv":["true"]}`); err != nil || final(evs).Event != "done" {
		t.Fatalf("execute: %v %+v", err, evs)
	}
	ready := s.waitConversation(cid, func(c store.Conversation) bool { return c.State == store.StateReady })
	task, _ := s.double.Task(ready.Workspace)
	if len(task.ContainerIDs) != 2 {
		t.Fatalf("task containers %v", task.ContainerIDs)
	}
	resp := s.request(http.MethodDelete, "/v1/conversations/"+cid)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("DELETE: %s", resp.Status)
	}
	stopped, err := s.double.WaitStatus(ctx, task.Arn, "STOPPED")
	if err != nil {
		t.Fatal(err)
	}
	if stopped.StopCode != "UserInitiated" || stopped.StoppedReason != "client" {
		t.Errorf("stopped with code %q reason %q", stopped.StopCode, stopped.StoppedReason)
	}
	rel := s.waitConversation(cid, func(c store.Conversation) bool { return c.State == store.StateReleased })
	if rel.Workspace != "" || rel.PreviousWorkspace != task.Arn {
		t.Errorf("released conversation %+v", rel)
	}
	s.waitEventsHandled(ctx)
	w, err := s.store.Workspace(ctx, task.Arn)
	if err != nil || w.State != store.WorkspaceStopped || w.LastStatus != "STOPPED" || w.Version != stopped.Version {
		t.Errorf("workspace after its STOPPED event: %+v (v%d) %v", w, stopped.Version, err)
	}
	if c, _ := s.store.Conversation(ctx, cid); c.State != store.StateReleased {
		t.Errorf("conversation %s after the STOPPED event, want released", c.State)
	}
	for name, id := range task.ContainerIDs {
		if _, err := s.docker.ContainerInspect(ctx, id); !dockerclient.IsErrNotFound(err) {
			t.Errorf("container %s survives its STOPPED task: %v", name, err)
		}
	}
	if cs := s.clusterContainers(); len(cs) != 0 {
		t.Errorf("%d containers left", len(cs))
	}
}

// Two workspaced replicas on the same queues, cluster and Redis (competing
// SQS consumers): concurrent executes of one new conversation through
// both APIs start exactly one task, and every execute is served.
func TestECSTwoReplicasOneTask(t *testing.T) {
	t.Parallel()
	s := startECSStack(t, ecsOptions{docker: true})
	other := s.startReplica()
	ctx := ctxFor(t, 3*time.Minute)
	const cid, n = "ecs-replicas", 6
	results := make([]<-chan execResult, n)
	for i := range n {
		replica := s.stack
		if i%2 == 1 {
			replica = other
		}
		ch := make(chan execResult, 1)
		go func() {
			evs, err := replica.exec(ctx, cid, fmt.Sprintf(`{"kind":"command","argv":["echo","run-%d"]}`, i))
			ch <- execResult{evs, err}
		}()
		results[i] = ch
	}
	for i := range n {
		evs := recvExec(ctx, t, results[i])
		if stdout(evs) != fmt.Sprintf("run-%d\n", i) || final(evs).Event != "done" {
			t.Errorf("execute %d: %+v", i, evs)
		}
	}
	if tasks := s.double.Tasks(); len(tasks) != 1 {
		t.Fatalf("%d tasks, want exactly 1: %+v", len(tasks), tasks)
	}
	conv := s.waitConversation(cid, func(c store.Conversation) bool { return c.State == store.StateReady })
	if conv.Workspace != s.double.Tasks()[0].Arn {
		t.Errorf("bound to %s", conv.Workspace)
	}
}
