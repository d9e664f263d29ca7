package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/workspaced/workspaced/events"
	"github.com/workspaced/workspaced/events/bus"
	"github.com/workspaced/workspaced/events/bus/bustest"
	"github.com/workspaced/workspaced/sse"
	"github.com/workspaced/workspaced/store"
)

func TestMain(m *testing.M) {
	code := m.Run()
	bins.cleanup()
	bustest.CloseEmulator()
	if code == 0 {
		if err := goleak.Find(append(bustest.GoleakOptions(), // kumo (ECS/SQS tests) starts a reaper at init
			// The Docker client's and HTTP transports' idle connections
			// close asynchronously after the test's clients are closed.
			goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
			goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
			goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		)...); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// A new conversation streams status events, then the agent's events, then
// the final event; the next execute reuses the same container.
func TestExecuteEndToEnd(t *testing.T) {
	t.Parallel()
	s := startStack(t, nil)
	ctx := ctxFor(t, 2*time.Minute)

	evs, err := s.exec(ctx, "conv-a", `{"kind":"command","argv":["sh","-c","echo hello; echo oops >&2; exit 3"]}`)
	if err != nil {
		t.Fatal(err)
	}
	got := names(evs)
	want := []string{"run", "status", "status", "status", "stdout", "stderr", "done"}
	if !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v (%+v)", got, want, evs)
	}
	for i, st := range []string{"queued", "provisioning", "ready"} {
		if !strings.Contains(evs[i+1].Data, `"state":"`+st+`"`) {
			t.Errorf("status %d = %s, want %s", i, evs[i+1].Data, st)
		}
	}
	if evs[4].Data != "hello" || evs[5].Data != "oops" || !strings.Contains(final(evs).Data, `"exit_code":3`) {
		t.Errorf("run output %+v", evs[4:])
	}
	for i, ev := range evs { // ids increase
		if ev.ID != fmt.Sprint(i+1) {
			t.Errorf("event %d has id %q", i, ev.ID)
		}
	}
	first := s.waitConversation("conv-a", func(c store.Conversation) bool { return c.State == store.StateReady })

	// A Claude run (the stand-in CLI prints real stream-json) on the same workspace.
	evs, err = s.exec(ctx, "conv-a", `{"prompt":"say hi"}`)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(evs); slices.Contains(got, "status") || final(evs).Event != "done" {
		t.Fatalf("second execute: %v", got)
	}
	var types []string
	for _, ev := range evs {
		if ev.Event == "message" {
			var m struct{ Type string }
			if err := json.Unmarshal([]byte(ev.Data), &m); err != nil {
				t.Fatalf("message is not JSON: %s", ev.Data)
			}
			types = append(types, m.Type)
		}
	}
	if !slices.Equal(types, []string{"system", "assistant", "result"}) {
		t.Errorf("claude stream-json types %v", types)
	}
	second, err := s.store.Conversation(ctx, "conv-a")
	if err != nil || second.Workspace != first.Workspace {
		t.Fatalf("workspace changed: %s → %s (%v)", first.Workspace, second.Workspace, err)
	}
	if n := len(s.running()); n != 1 {
		t.Errorf("%d running containers, want 1", n)
	}
}

// 20 concurrent executes for one new conversation → exactly one container,
// all 20 served.
func TestConcurrentExecutesOneWorkspace(t *testing.T) {
	t.Parallel()
	s := startStack(t, nil)
	ctx := ctxFor(t, 3*time.Minute)
	const n = 20
	var wg sync.WaitGroup
	outs := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			evs, err := s.exec(ctx, "conv-many", fmt.Sprintf(`{"kind":"command","argv":["echo","run-%d"]}`, i))
			if err == nil && final(evs).Event != "done" {
				err = fmt.Errorf("final event %+v", final(evs))
			}
			outs[i], errs[i] = stdout(evs), err
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || outs[i] != fmt.Sprintf("run-%d\n", i) {
			t.Errorf("request %d: output %q, err %v", i, outs[i], errs[i])
		}
	}
	if cs := listDeployment(t, s.docker, s.deployment); len(cs) != 1 {
		t.Fatalf("%d containers, want exactly 1", len(cs))
	}
}

// docker kill of a bound workspace → STOPPED event → binding cleared → the
// next execute provisions a new workspace and succeeds.
func TestKilledWorkspaceIsReplaced(t *testing.T) {
	t.Parallel()
	s := startStack(t, nil)
	ctx := ctxFor(t, 2*time.Minute)
	if _, err := s.exec(ctx, "conv-kill", `{"kind":"command","argv":["true"]}`); err != nil {
		t.Fatal(err)
	}
	before := s.waitConversation("conv-kill", func(c store.Conversation) bool { return c.State == store.StateReady })
	if err := s.docker.ContainerKill(ctx, before.Workspace, "KILL"); err != nil {
		t.Fatal(err)
	}
	lost := s.waitConversation("conv-kill", func(c store.Conversation) bool { return c.State == store.StateLost })
	if lost.Workspace != "" || lost.Generation != before.Generation+1 {
		t.Fatalf("after kill: %+v", lost)
	}
	evs, err := s.exec(ctx, "conv-kill", `{"kind":"command","argv":["echo","back"]}`)
	if err != nil || stdout(evs) != "back\n" || final(evs).Event != "done" {
		t.Fatalf("execute after kill: %v %+v", err, evs)
	}
	after, _ := s.store.Conversation(ctx, "conv-kill")
	if after.Workspace == "" || after.Workspace == before.Workspace {
		t.Fatalf("workspace not replaced: %s → %s", before.Workspace, after.Workspace)
	}
}

// DELETE → the container and its socket directory are gone; binding gone.
func TestDeleteReleasesWorkspace(t *testing.T) {
	t.Parallel()
	s := startStack(t, nil)
	ctx := ctxFor(t, 2*time.Minute)
	if _, err := s.exec(ctx, "conv-del", `{"kind":"command","argv":["true"]}`); err != nil {
		t.Fatal(err)
	}
	ready := s.waitConversation("conv-del", func(c store.Conversation) bool { return c.State == store.StateReady })
	entries := socketDirs(t, s.sockets)
	if len(entries) != 1 {
		t.Fatalf("%d socket dirs before release, want 1", len(entries))
	}
	destroyed := s.watchDestroy(ctx, ready.Workspace)
	resp := s.request(http.MethodDelete, "/v1/conversations/conv-del")
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("DELETE: %s", resp.Status)
	}
	rel := s.waitConversation("conv-del", func(c store.Conversation) bool { return c.State == store.StateReleased })
	if rel.Workspace != "" {
		t.Fatalf("still bound: %+v", rel)
	}
	select {
	case <-destroyed:
	case <-ctx.Done():
		t.Fatal("the container was never removed")
	}
	if _, err := s.docker.ContainerInspect(ctx, ready.Workspace); err == nil {
		t.Errorf("container %s still exists", ready.Workspace)
	}
	if entries := socketDirs(t, s.sockets); len(entries) != 0 {
		t.Errorf("socket dirs left: %v", entries)
	}
}

// With "on_disconnect": "cancel", a client disconnect mid-stream kills the
// run in the agent (without it the run goes on: TestRunsEndToEnd).
func TestDisconnectKillsRun(t *testing.T) {
	t.Parallel()
	s := startStack(t, nil)
	ctx := ctxFor(t, 2*time.Minute)
	reqCtx, disconnect := context.WithCancel(ctx)
	resp, err := s.post(reqCtx, "conv-dc", `{"kind":"command","argv":["sh","-c","echo started; sleep 600"],"on_disconnect":"cancel"}`)
	if err != nil {
		t.Fatal(err)
	}
	rd := sse.NewReader(resp.Body)
	readUntilStdout(t, rd, "started")
	disconnect()
	resp.Body.Close()
	// Ask the agent: the next run of the conversation waits its turn (or
	// the agent's 409 while it kills the group) and then sees no sleep.
	evs, err := s.exec(ctx, "conv-dc", `{"kind":"command","argv":["ps","-o","pid,args"]}`)
	if err != nil || final(evs).Event != "done" {
		t.Fatalf("ps: %v %+v", err, evs)
	}
	if out := stdout(evs); strings.Contains(out, "sleep 600") {
		t.Fatalf("the run survived the disconnect:\n%s", out)
	}
}

// A malformed command goes to the poison queue and the consumer keeps going.
func TestMalformedCommandPoisoned(t *testing.T) {
	t.Parallel()
	s := startStack(t, nil)
	ctx := ctxFor(t, 2*time.Minute)
	poison, err := s.app.bus.Subscriber().Subscribe(ctx, events.TopicPoison)
	if err != nil {
		t.Fatal(err)
	}
	bad := bus.NewCommandMessage(events.TypeWorkspaceRequested, []byte(`{"schema_version":1,"conversation_id":"../etc"`), "bad-1")
	if err := s.app.bus.Publisher().Publish(events.TopicWorkspaceRequested, bad); err != nil {
		t.Fatal(err)
	}
	select {
	case msg := <-poison:
		msg.Ack()
		if msg.UUID != bad.UUID {
			t.Fatalf("poisoned %s, want %s", msg.UUID, bad.UUID)
		}
	case <-ctx.Done():
		t.Fatal("malformed command never reached the poison queue")
	}
	evs, err := s.exec(ctx, "conv-after-poison", `{"kind":"command","argv":["echo","ok"]}`)
	if err != nil || stdout(evs) != "ok\n" {
		t.Fatalf("consumer stuck after a poison message: %v %+v", err, evs)
	}
}
