package workers_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/workspaced/workspaced/agent/client"
	"github.com/workspaced/workspaced/events"
	"github.com/workspaced/workspaced/store"
	"github.com/workspaced/workspaced/workers"
	"github.com/workspaced/workspaced/workspace"
)

// handleAll delivers msgs concurrently to handle and fails on any error.
func handleAll(t *testing.T, handle message.NoPublishHandlerFunc, msgs []*message.Message) {
	t.Helper()
	var wg sync.WaitGroup
	for _, m := range msgs {
		wg.Go(func() {
			if err := handle(m); err != nil {
				t.Errorf("handle %s: %v", m.UUID, err)
			}
		})
	}
	wg.Wait()
}

func TestRequestedRedeliveredFiveTimesOneWorkspace(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.claim(t, "conv-dup")
	msg := requested(t, "conv-dup")
	var msgs []*message.Message
	for range 5 {
		msgs = append(msgs, copyMsg(t, msg))
	}
	handleAll(t, provision(h.prov), msgs)
	c := h.waitFor(t, "conv-dup", done)
	if c.State != store.StateReady {
		t.Fatalf("conversation = %+v, want ready", c)
	}
	// Later redeliveries find it live and do nothing.
	for range 5 {
		if err := provision(h.prov)(copyMsg(t, msg)); err != nil {
			t.Fatal(err)
		}
	}
	if ids := h.containers(t); len(ids) != 1 || ids[0] != c.Workspace {
		t.Fatalf("containers = %v, want exactly the bound %s", ids, c.Workspace)
	}
}

func TestRequestedTwentyConcurrentOneWorkspace(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.claim(t, "conv-many")
	var msgs []*message.Message
	for range 20 {
		msgs = append(msgs, requested(t, "conv-many"))
	}
	handleAll(t, provision(h.prov), msgs)
	c := h.waitFor(t, "conv-many", done)
	if c.State != store.StateReady {
		t.Fatalf("conversation = %+v, want ready", c)
	}
	if ids := h.containers(t); len(ids) != 1 || ids[0] != c.Workspace {
		t.Fatalf("containers = %v, want exactly the bound %s", ids, c.Workspace)
	}
}

// TestReadyAfterHealth: the waiter sees queued → provisioning → ready, and
// the endpoint it gets reaches a healthy agent.
func TestReadyAfterHealth(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	ctx := testCtx(t, 2*time.Minute)
	h.claim(t, "conv-ready")
	w, err := h.st.Watch(ctx, "conv-ready")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	c, err := w.Next(ctx) // the current state: queued
	if err != nil {
		t.Fatal(err)
	}
	seen := []store.ConversationState{c.State}
	if err := provision(h.prov)(requested(t, "conv-ready")); err != nil {
		t.Fatal(err)
	}
	for !c.Done() {
		if c, err = w.Next(ctx); err != nil {
			t.Fatalf("watch: %v (seen %v)", err, seen)
		}
		seen = append(seen, c.State)
	}
	want := []store.ConversationState{store.StateQueued, store.StateProvisioning, store.StateReady}
	// If the workspace's RUNNING and health check beat the bind, the bind
	// makes the conversation ready at once.
	raced := []store.ConversationState{store.StateQueued, store.StateReady}
	if !slices.Equal(seen, want) && !slices.Equal(seen, raced) {
		t.Fatalf("states = %v, want %v", seen, want)
	}
	ws, err := h.st.Workspace(ctx, c.Workspace)
	if err != nil {
		t.Fatal(err)
	}
	if ws.State != store.WorkspaceReady || ws.Token != workers.WorkspaceToken("conv-ready", 0) {
		t.Fatalf("workspace = %+v", ws)
	}
	rt, err := h.rt.Transport(c.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.(interface{ CloseIdleConnections() }).CloseIdleConnections()
	if hl, err := client.New(rt).Health(ctx); err != nil || hl.Status != "ok" {
		t.Fatalf("agent health at %s = %+v, %v", c.Endpoint, hl, err)
	}
	if got := h.metric(t, "workspaced_provisioning_seconds", "start", workers.StartCold); got != 1 {
		t.Fatalf("provisioning observations = %v, want 1", got)
	}
}

// TestKilledWorkspaceIsLostThenReplaced: docker kill → STOPPED → the
// binding is cleared with a new generation; the next request starts a new
// workspace with a new token, and the dead container is removed.
func TestKilledWorkspaceIsLostThenReplaced(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	ctx := testCtx(t, 2*time.Minute)
	h.claim(t, "conv-kill")
	if err := provision(h.prov)(requested(t, "conv-kill")); err != nil {
		t.Fatal(err)
	}
	first := h.waitFor(t, "conv-kill", done)
	if first.State != store.StateReady {
		t.Fatalf("conversation = %+v, want ready", first)
	}
	if err := h.cli.ContainerKill(ctx, first.Workspace, "KILL"); err != nil {
		t.Fatal(err)
	}
	lost := h.waitFor(t, "conv-kill", func(c store.Conversation) bool { return c.State == store.StateLost })
	if lost.Workspace != "" || lost.Generation != 1 || lost.PreviousWorkspace != first.Workspace || lost.Error == "" {
		t.Fatalf("lost conversation = %+v", lost)
	}
	if _, err := h.st.MarkQueued(ctx, "conv-kill", "r2", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := provision(h.prov)(requested(t, "conv-kill")); err != nil {
		t.Fatal(err)
	}
	second := h.waitFor(t, "conv-kill", done)
	if second.State != store.StateReady || second.Workspace == first.Workspace {
		t.Fatalf("after re-request: %+v, want ready on a new workspace (old %s)", second, first.Workspace)
	}
	info, err := h.rt.Inspect(ctx, second.Workspace)
	if err != nil {
		t.Fatal(err)
	}
	if info.Token != workers.WorkspaceToken("conv-kill", 1) {
		t.Fatalf("new workspace token = %s, want generation 1's", info.Token)
	}
	// Events are handled in order: the dead container's cleanup ran before
	// the new workspace's RUNNING was handled.
	if _, err := h.rt.Inspect(ctx, first.Workspace); !errors.Is(err, workspace.ErrNotFound) {
		t.Fatalf("dead workspace still there: %v", err)
	}
}

func TestReleaseRemovesWorkspace(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	ctx := testCtx(t, 2*time.Minute)
	h.claim(t, "conv-rel")
	if err := provision(h.prov)(requested(t, "conv-rel")); err != nil {
		t.Fatal(err)
	}
	c := h.waitFor(t, "conv-rel", done)
	info, err := h.rt.Inspect(ctx, c.Workspace)
	if err != nil {
		t.Fatal(err)
	}
	sockDir := filepath.Join(h.sockets, info.Token)
	if _, err := os.Stat(sockDir); err != nil {
		t.Fatalf("socket dir of a ready workspace: %v", err)
	}
	msg := released(t, "conv-rel", "")
	if err := release(h.rel)(msg); err != nil {
		t.Fatal(err)
	}
	if _, err := h.rt.Inspect(ctx, c.Workspace); !errors.Is(err, workspace.ErrNotFound) {
		t.Fatalf("released workspace still there: %v", err)
	}
	if _, err := os.Stat(sockDir); !os.IsNotExist(err) {
		t.Fatalf("socket dir after release: %v", err)
	}
	got, err := h.st.Conversation(ctx, "conv-rel")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != store.StateReleased || got.Workspace != "" || got.Generation != 1 {
		t.Fatalf("conversation after release = %+v", got)
	}
	// Redelivery changes nothing.
	if err := release(h.rel)(copyMsg(t, msg)); err != nil {
		t.Fatal(err)
	}
	if again, _ := h.st.Conversation(ctx, "conv-rel"); again.Rev != got.Rev {
		t.Fatalf("redelivered release changed the conversation: %+v", again)
	}
}

// TestStaleReleaseStopsOnlyNamedWorkspace: a release naming a workspace the
// conversation is no longer bound to leaves the current binding alone.
func TestStaleReleaseStopsOnlyNamedWorkspace(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	ctx := testCtx(t, 2*time.Minute)
	h.claim(t, "conv-stale")
	if err := provision(h.prov)(requested(t, "conv-stale")); err != nil {
		t.Fatal(err)
	}
	c := h.waitFor(t, "conv-stale", done)
	if err := release(h.rel)(released(t, "conv-stale", "some-old-workspace")); err != nil {
		t.Fatal(err)
	}
	got, err := h.st.Conversation(ctx, "conv-stale")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != store.StateReady || got.Workspace != c.Workspace || got.Rev != c.Rev {
		t.Fatalf("stale release changed the binding: %+v", got)
	}
}

func TestMalformedPayloadIsTerminal(t *testing.T) {
	t.Parallel()
	// Handlers reject before touching any dependency: none needed.
	prov := workers.NewProvisioner(nil, nil, nil, workers.ProvisionerOptions{})
	rel := workers.NewReleaser(nil, nil, workers.ReleaserOptions{})
	sub := workers.NewStateSubscriber(nil, nil, nil, workers.StateOptions{})
	handlers := map[string]message.NoPublishHandlerFunc{"requested": provision(prov), "released": release(rel), "state": apply(sub)}
	payloads := map[string]string{
		"not json":       `{`,
		"empty object":   `{}`,
		"trailing data":  `{} {}`,
		"wrong types":    `{"conversation_id": 5}`,
		"future version": `{"schema_version": 99, "conversation_id": "c", "request_id": "r", "requested_at": "2024-01-01T00:00:00Z", "reason": "client", "detail-type": "x"}`,
	}
	for hn, handle := range handlers {
		for pn, p := range payloads {
			t.Run(hn+"/"+pn, func(t *testing.T) {
				t.Parallel()
				err := handle(message.NewMessage("id", []byte(p)))
				if err == nil || !workspace.IsTerminal(err) {
					t.Fatalf("err = %v, want a terminal error", err)
				}
				if !errors.Is(err, events.ErrMalformed) && !errors.Is(err, events.ErrUnsupportedVersion) {
					t.Fatalf("err = %v, want ErrMalformed or ErrUnsupportedVersion", err)
				}
			})
		}
	}
}

// TestTerminalStartErrorFailsConversation: the runtime refuses for good
// (the image does not exist): the conversation fails and its waiter wakes
// with the reason.
func TestTerminalStartErrorFailsConversation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{image: "workspaced/does-not-exist:never", noWatch: true})
	h.claim(t, "conv-term")
	waited := make(chan store.Conversation, 1)
	go func() { waited <- h.waitFor(t, "conv-term", done) }()
	err := provision(h.prov)(requested(t, "conv-term"))
	if !workspace.IsTerminal(err) {
		t.Fatalf("Provision = %v, want a terminal error", err)
	}
	c := <-waited
	if c.State != store.StateFailed || c.Error == "" {
		t.Fatalf("waiter got %+v, want failed with a reason", c)
	}
	if got := h.metric(t, "workspaced_workspace_start_failures_total", "kind", workers.FailTerminal); got != 1 {
		t.Fatalf("terminal failures = %v, want 1", got)
	}
	if ids := h.containers(t); len(ids) != 0 {
		t.Fatalf("containers = %v, want none", ids)
	}
}

// capacityRuntime is the real runtime whose Start reports no capacity:
// the retryable failure Docker cannot be made to produce on demand.
type capacityRuntime struct{ workspace.Runtime }

func (capacityRuntime) Start(context.Context, workspace.StartSpec) (workspace.Info, error) {
	return workspace.Info{}, workspace.ErrCapacity
}

// TestGiveUpFailsConversation: retryable failures are retried; once the
// retries are exhausted the give-up hook (outside Retry) fails the
// conversation so the waiter is told.
func TestGiveUpFailsConversation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{noWatch: true, wrapRT: func(rt workspace.Runtime) workspace.Runtime { return capacityRuntime{rt} }})
	h.claim(t, "conv-giveup")
	attempts := 0
	counted := func(msg *message.Message) ([]*message.Message, error) {
		attempts++
		return nil, provision(h.prov)(msg)
	}
	retry := middleware.Retry{MaxRetries: 2, InitialInterval: time.Millisecond}
	chain := h.prov.FailOnGiveUp()(retry.Middleware(counted))
	waited := make(chan store.Conversation, 1)
	go func() { waited <- h.waitFor(t, "conv-giveup", done) }()
	if _, err := chain(requested(t, "conv-giveup")); !errors.Is(err, workspace.ErrCapacity) {
		t.Fatalf("chain = %v, want the capacity error", err)
	}
	if attempts != 3 {
		t.Fatalf("attempts = %d, want 3", attempts)
	}
	c := <-waited
	if c.State != store.StateFailed || c.Error == "" {
		t.Fatalf("waiter got %+v, want failed", c)
	}
	if got := h.metric(t, "workspaced_workspace_start_failures_total", "kind", workers.FailCapacity); got != 3 {
		t.Fatalf("capacity failures = %v, want 3", got)
	}
	// Other messages pass through the hook untouched.
	other := released(t, "conv-other", "")
	if _, err := h.prov.FailOnGiveUp()(func(*message.Message) ([]*message.Message, error) {
		return nil, errors.New("boom")
	})(other); err == nil {
		t.Fatal("hook swallowed the error")
	}
	if _, err := h.st.Conversation(testCtx(t, 5*time.Second), "conv-other"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("hook touched another message's conversation: %v", err)
	}
}

// TestUnhealthyWorkspaceFailsConversation: an agent that never answers
// within the readiness deadline fails the conversation and is stopped.
func TestUnhealthyWorkspaceFailsConversation(t *testing.T) {
	t.Parallel()
	never := workers.HealthCheckFunc(func(context.Context, http.RoundTripper, string) error {
		return errors.New("not yet")
	})
	h := newHarness(t, harnessOptions{state: workers.StateOptions{Health: never, ReadyTimeout: 300 * time.Millisecond}})
	ctx := testCtx(t, 2*time.Minute)
	h.claim(t, "conv-sick")
	if err := provision(h.prov)(requested(t, "conv-sick")); err != nil {
		t.Fatal(err)
	}
	c := h.waitFor(t, "conv-sick", done)
	if c.State != store.StateFailed || c.PreviousWorkspace == "" {
		t.Fatalf("conversation = %+v, want failed", c)
	}
	// The failure is recorded before the stop: wait for the stop's event.
	h.waitRemoved(t, ctx, c.PreviousWorkspace)
}

// saverFunc adapts a function to workers.Saver.
type saverFunc func(context.Context, workspace.SaveTarget) error

func (f saverFunc) Save(ctx context.Context, t workspace.SaveTarget) error { return f(ctx, t) }

// TestReleaseSavesBeforeStop: the Saver sees the running workspace; when
// it fails, the workspace is neither stopped nor unbound (the release is
// retried).
func TestReleaseSavesBeforeStop(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	ctx := testCtx(t, 2*time.Minute)
	h.claim(t, "conv-save")
	if err := provision(h.prov)(requested(t, "conv-save")); err != nil {
		t.Fatal(err)
	}
	c := h.waitFor(t, "conv-save", done)
	var saved []workspace.SaveTarget
	fail := true
	saver := saverFunc(func(ctx context.Context, tg workspace.SaveTarget) error {
		info, err := h.rt.Inspect(ctx, tg.Workspace)
		if err != nil || info.Status != workspace.StatusRunning {
			t.Errorf("at save time the workspace is %+v, %v; want running", info, err)
		}
		saved = append(saved, tg)
		if fail {
			return errors.New("bucket unavailable")
		}
		return nil
	})
	rel := workers.NewReleaser(h.rt, h.st, workers.ReleaserOptions{Saver: saver, Logger: testLogger(t)})
	msg := released(t, "conv-save", "")
	if err := release(rel)(msg); err == nil {
		t.Fatal("release with a failing saver succeeded")
	}
	if got, _ := h.st.Conversation(ctx, "conv-save"); got.State != store.StateReady || got.Workspace != c.Workspace {
		t.Fatalf("after a failed save: %+v, want still ready and bound", got)
	}
	fail = false
	if err := release(rel)(copyMsg(t, msg)); err != nil {
		t.Fatal(err)
	}
	want := workspace.SaveTarget{Tenant: "tenant", Conversation: "conv-save", Workspace: c.Workspace, Endpoint: c.Endpoint, Reason: string(events.ReasonClient)}
	if len(saved) != 2 || saved[1] != want {
		t.Fatalf("saves = %+v, want two of %+v", saved, want)
	}
	if _, err := h.rt.Inspect(ctx, c.Workspace); !errors.Is(err, workspace.ErrNotFound) {
		t.Fatalf("released workspace still there: %v", err)
	}
}

// TestReadinessResumesOnRedelivery: an attempt that runs out of time before
// the agent answers is retried (not declared unhealthy); the redelivered
// event, a duplicate, resumes the wait and makes the conversation ready.
func TestReadinessResumesOnRedelivery(t *testing.T) {
	t.Parallel()
	var healthy atomic.Bool
	gate := workers.HealthCheckFunc(func(ctx context.Context, rt http.RoundTripper, ep string) error {
		if !healthy.Load() {
			return errors.New("not yet")
		}
		return workers.AgentHealth.Healthy(ctx, rt, ep)
	})
	h := newHarness(t, harnessOptions{noWatch: true, state: workers.StateOptions{Health: gate, ReadyTimeout: time.Minute}})
	ctx := testCtx(t, 2*time.Minute)
	h.claim(t, "conv-resume")
	if err := provision(h.prov)(requested(t, "conv-resume")); err != nil {
		t.Fatal(err)
	}
	c, err := h.st.Conversation(ctx, "conv-resume")
	if err != nil {
		t.Fatal(err)
	}
	ev := events.TaskStateChange{
		Version: "0", ID: "e1", DetailType: events.DetailTypeTaskStateChange, Source: "test", Time: time.Now(),
		Detail: events.TaskDetail{TaskArn: c.Workspace, LastStatus: string(workspace.StatusRunning), Version: 1},
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := h.sub.Apply(short, ev); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("first attempt = %v, want its deadline", err)
	}
	if got, _ := h.st.Conversation(ctx, "conv-resume"); got.State != store.StateProvisioning {
		t.Fatalf("after the cut-short attempt: %+v, want still provisioning", got)
	}
	healthy.Store(true)
	if err := h.sub.Apply(ctx, ev); err != nil {
		t.Fatal(err)
	}
	if got, _ := h.st.Conversation(ctx, "conv-resume"); got.State != store.StateReady {
		t.Fatalf("after redelivery: %+v, want ready", got)
	}
	if got := h.metric(t, "workspaced_task_events_total", "outcome", string(store.OutcomeStale)); got != 1 {
		t.Fatalf("stale events = %v, want 1 (the redelivery)", got)
	}
}
