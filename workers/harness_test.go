package workers_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/workspaced/workspaced/events"
	"github.com/workspaced/workspaced/events/bus"
	"github.com/workspaced/workspaced/events/bus/bustest"
	"github.com/workspaced/workspaced/internal/redistest"
	"github.com/workspaced/workspaced/internal/testenv"
	"github.com/workspaced/workspaced/runtime/docker"
	"github.com/workspaced/workspaced/runtime/runtimetest"
	"github.com/workspaced/workspaced/store"
	"github.com/workspaced/workspaced/store/storetest"
	"github.com/workspaced/workspaced/workers"
	"github.com/workspaced/workspaced/workspace"
)

// kumo (the S3 emulator of the GC test) starts a reaper at init.
func TestMain(m *testing.M) { bustest.VerifyTestMain(m, bustest.GoleakOptions()...) }

// The store satisfies every interface the workers declare.
var (
	_ workers.ProvisionStore = (*store.Store)(nil)
	_ workers.ReleaseStore   = (*store.Store)(nil)
	_ workers.StateStore     = (*store.Store)(nil)
	_ workspace.Runtime      = (*docker.Runtime)(nil)
	_ workers.ListenAwaiter  = (*docker.Runtime)(nil) // readiness is signalled on Docker
)

const testLabel = "test.workspaced.id"

func testImage() string {
	if img := os.Getenv("WORKSPACE_TEST_IMAGE"); img != "" {
		return img
	}
	return "workspaced/workspace:dev"
}

// harness is one test's real world: a redis-server, the Docker runtime
// (containers labelled for this test), the engine's event watcher feeding
// the state subscriber, and the two command consumers.
type harness struct {
	cli     *client.Client
	rt      workspace.Runtime
	drt     *docker.Runtime
	st      *store.Store
	rdb     *redis.Client
	reg     *prometheus.Registry
	m       *workers.Metrics
	prov    *workers.Provisioner
	rel     *workers.Releaser
	sub     *workers.StateSubscriber
	pers    *workers.Personaliser
	testID  string
	sockets string
}

type harnessOptions struct {
	image    string
	state    workers.StateOptions
	wrapRT   func(workspace.Runtime) workspace.Runtime // fault injection
	noWatch  bool
	claims   bool             // personalise with the Docker claim records
	restorer workers.Restorer // personalise with this Restorer
}

func newHarness(t *testing.T, o harnessOptions) *harness {
	t.Helper()
	cli := testenv.Docker(t)
	if o.image == "" {
		o.image = testImage()
		testenv.Image(t, cli, o.image)
	}
	h := &harness{cli: cli, testID: runtimetest.Token(t), reg: prometheus.NewRegistry()}
	rs := redistest.Start(t)
	storetest.Audit(t, rs, "test:")
	rdb := rs.Client(t)
	h.st = store.New(rdb, store.Options{Prefix: "test:"})
	h.rdb = rdb
	base, err := os.MkdirTemp("", "wsw")
	if err != nil {
		t.Fatal(err)
	}
	h.sockets = base
	t.Cleanup(func() { h.removeAll(t); _ = os.RemoveAll(base) })
	log := testLogger(t)
	h.drt, err = docker.New(cli, docker.Options{
		Image:          o.image,
		SocketBasePath: base,
		Labels:         map[string]string{testLabel: h.testID},
		StopGrace:      time.Second,
		Logger:         log,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.rt = h.drt
	if o.wrapRT != nil {
		h.rt = o.wrapRT(h.rt)
	}
	m, err := workers.NewMetrics(h.reg)
	if err != nil {
		t.Fatal(err)
	}
	h.m = m
	h.prov = workers.NewProvisioner(h.rt, h.st, m, workers.ProvisionerOptions{Logger: log})
	h.rel = workers.NewReleaser(h.rt, h.st, workers.ReleaserOptions{Logger: log})
	o.state.Logger = log
	if o.claims || o.restorer != nil {
		h.pers = workers.NewPersonaliser(h.rt, h.st, workers.PersonaliserOptions{Restorer: o.restorer, Logger: log})
		o.state.Personaliser = h.pers
	}
	h.sub = workers.NewStateSubscriber(h.rt, h.st, m, o.state)
	if !o.noWatch {
		h.watch(t)
	}
	return h
}

// watch runs the Docker event watcher, delivering each envelope to the
// state subscriber as a bus message would be, until the test ends.
func (h *harness) watch(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	w := docker.NewWatcher(h.cli, docker.WatcherOptions{
		Labels:     map[string]string{testLabel: h.testID},
		Since:      time.Now().Add(-time.Second),
		MinBackoff: 10 * time.Millisecond,
		Logger:     testLogger(t),
	}, sinkFunc(func(ctx context.Context, e events.TaskStateChange) error {
		b, err := events.EncodeTaskStateChange(e)
		if err != nil {
			return err
		}
		return redeliver(ctx, func() error {
			msg := message.NewMessage(uuid.NewString(), b)
			msg.SetContext(ctx)
			return apply(h.sub)(msg)
		})
	}))
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// redeliver calls handle as the bus's router would deliver a message:
// again after a failure, with the router's default backoff (bus.RetryOptions
// defaults: 3 retries from 250ms). The watcher's own retries (3 within
// 30ms at the harness's backoff) stand for a failed publish, not a failed
// handler: a handler refused while the provisioner holds the
// conversation's lock would otherwise drop the event.
func redeliver(ctx context.Context, handle func() error) error {
	wait := bus.DefaultInitialInterval
	for attempt := 0; ; attempt++ {
		err := handle()
		if err == nil || attempt == bus.DefaultMaxRetries || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, bus.DefaultMaxInterval)
	}
}

type sinkFunc func(ctx context.Context, e events.TaskStateChange) error

func (f sinkFunc) PublishTaskStateChange(ctx context.Context, e events.TaskStateChange) error {
	return f(ctx, e)
}

func (h *harness) removeAll(t *testing.T) {
	testenv.RemoveLabelled(t, h.cli, testLabel, h.testID)
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func requested(t *testing.T, cid string) *message.Message {
	t.Helper()
	b, err := events.EncodeRequested(events.WorkspaceRequested{
		ConversationID: cid, RequestID: uuid.NewString(), Tenant: "tenant", RequestedAt: time.Now(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return command(t, events.TypeWorkspaceRequested, b)
}

// provision, release and apply are the consumers as cmd/workspaced routes
// them: bus.Handle decodes the payload.
func provision(p *workers.Provisioner) message.NoPublishHandlerFunc {
	return bus.Handle(events.DecodeRequested, p.Provision)
}

func release(r *workers.Releaser) message.NoPublishHandlerFunc {
	return bus.Handle(events.DecodeReleased, r.Release)
}

func apply(s *workers.StateSubscriber) message.NoPublishHandlerFunc {
	return bus.Handle(events.DecodeTaskStateChange, s.Apply)
}

func released(t *testing.T, cid, wid string) *message.Message {
	t.Helper()
	b, err := events.EncodeReleased(events.WorkspaceReleased{
		ConversationID: cid, WorkspaceID: wid, Reason: events.ReasonClient, RequestedAt: time.Now(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return command(t, events.TypeWorkspaceReleased, b)
}

func command(t *testing.T, typ string, payload []byte) *message.Message {
	msg := message.NewMessage(uuid.NewString(), payload)
	msg.Metadata.Set(events.MetadataType, typ)
	msg.SetContext(testCtx(t, 2*time.Minute))
	return msg
}

// copyMsg is a redelivery of msg: same UUID and payload.
func copyMsg(t *testing.T, msg *message.Message) *message.Message {
	c := msg.Copy()
	c.SetContext(testCtx(t, 2*time.Minute))
	return c
}

// claim claims cid and marks it queued, as the API does before publishing.
func (h *harness) claim(t *testing.T, cid string) {
	t.Helper()
	ctx := testCtx(t, 10*time.Second)
	if _, err := h.st.ClaimConversation(ctx, cid, "key", "tenant"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.st.MarkQueued(ctx, cid, "r", time.Now()); err != nil {
		t.Fatal(err)
	}
}

// waitFor blocks until cid's state satisfies cond (pub/sub, no polling).
func (h *harness) waitFor(t *testing.T, cid string, cond func(store.Conversation) bool) store.Conversation {
	t.Helper()
	c, err := h.st.WaitConversation(testCtx(t, 90*time.Second), cid, cond)
	if err != nil {
		t.Fatalf("wait for conversation %s: %v", cid, err)
	}
	return c
}

func done(c store.Conversation) bool { return c.Done() }

// containers lists this test's workspaces the runtime knows, running or not.
func (h *harness) containers(t *testing.T) []string {
	t.Helper()
	infos, err := h.drt.List(testCtx(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, i := range infos {
		ids = append(ids, i.ID)
	}
	return ids
}

// metric returns the value of the counter (or the sample count of the
// histogram) name whose label has value val; 0 if absent.
func (h *harness) metric(t *testing.T, name, label, val string) float64 {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == val {
					if hg := m.GetHistogram(); hg != nil {
						return float64(hg.GetSampleCount())
					}
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// waitRemoved blocks until the engine removed container id (the engine's
// wait API: no polling).
func (h *harness) waitRemoved(t *testing.T, ctx context.Context, id string) {
	t.Helper()
	okc, errc := h.cli.ContainerWait(ctx, id, container.WaitConditionRemoved)
	select {
	case <-okc:
	case err := <-errc:
		if !cerrdefs.IsNotFound(err) {
			t.Fatalf("wait for %s to be removed: %v", id, err)
		}
	}
}
