package workers_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"

	"github.com/workspaced/workspaced/events"
	"github.com/workspaced/workspaced/events/bus/bustest"
	"github.com/workspaced/workspaced/files"
	"github.com/workspaced/workspaced/runtime/docker"
	"github.com/workspaced/workspaced/store"
	"github.com/workspaced/workspaced/workers"
	"github.com/workspaced/workspaced/workspace"
)

// later is a store on the harness's Redis whose clock runs ahead, so GC
// sees time pass without the test waiting.
func (h *harness) later(d time.Duration) *store.Store {
	return store.New(h.rdb, store.Options{Prefix: "test:", Now: func() time.Time { return time.Now().Add(d) }})
}

// releaseNow delivers GC's workspace.released straight to a Releaser.
type releaseNow struct{ rel *workers.Releaser }

func (p releaseNow) PublishReleased(ctx context.Context, cmd events.WorkspaceReleased) error {
	return p.rel.Release(ctx, cmd)
}

// recordingSaver records saves and passes them on to the real S3 saver
// (files.Store on the emulator's S3).
type recordingSaver struct {
	next  workers.Saver
	mu    sync.Mutex
	saves []workspace.SaveTarget
}

func (s *recordingSaver) Save(ctx context.Context, t workspace.SaveTarget) error {
	s.mu.Lock()
	s.saves = append(s.saves, t)
	s.mu.Unlock()
	return s.next.Save(ctx, t)
}

// s3Files is files.Store on a fresh bucket of the in-process emulator.
func s3Files(t *testing.T, rt workspace.Runtime) (*files.Store, *s3.Client, string) {
	t.Helper()
	emu := bustest.StartEmulator(t)
	client := s3.NewFromConfig(emu.Config, func(o *s3.Options) { o.BaseEndpoint = aws.String(emu.URL); o.UsePathStyle = true })
	bucket := "gc-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	if len(bucket) > 40 {
		bucket = bucket[:40]
	}
	bucket += fmt.Sprint(time.Now().UnixNano() % 1e9)
	if _, err := client.CreateBucket(testCtx(t, 10*time.Second), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	fs, err := files.New(client, rt, files.Options{Bucket: bucket, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return fs, client, bucket
}

// Idle TTL: an idle workspace is released with reason idle_ttl and its
// files saved (to S3, the emulator's); one with an open (long) stream is
// not.
func TestGCReleasesIdleNotStreaming(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	ctx := testCtx(t, 2*time.Minute)
	idle := h.acquire(t, h.prov, "idle")
	busy := h.acquire(t, h.prov, "busy")
	// A stream on "busy" holds a lease well past the GC's view of now.
	if ok, err := h.st.StreamStarted(ctx, busy.Workspace, "stream-1", 3*time.Hour); err != nil || !ok {
		t.Fatalf("StreamStarted = %v, %v", ok, err)
	}
	fs, s3c, bucket := s3Files(t, h.rt)
	saver := &recordingSaver{next: fs}
	rel := workers.NewReleaser(h.rt, h.st, workers.ReleaserOptions{Saver: saver, Logger: testLogger(t)})
	gc := workers.NewGC(h.rt, h.later(time.Hour), releaseNow{rel}, nil, h.m, workers.GCOptions{
		IdleTTL: 30 * time.Minute, OrphanGrace: 24 * time.Hour, Logger: testLogger(t),
	})
	if err := gc.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if c := h.waitFor(t, "idle", func(c store.Conversation) bool { return c.State == store.StateReleased }); c.PreviousWorkspace != idle.Workspace {
		t.Fatalf("idle conversation = %+v", c)
	}
	saver.mu.Lock()
	saves := saver.saves
	saver.mu.Unlock()
	if len(saves) != 1 || saves[0].Workspace != idle.Workspace || saves[0].Reason != string(events.ReasonIdleTTL) {
		t.Fatalf("saves = %+v, want one of %s (idle_ttl)", saves, idle.Workspace)
	}
	objs, err := s3c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil || len(objs.Contents) == 0 {
		t.Fatalf("nothing saved to S3: %v", err)
	}
	if c, err := h.st.Conversation(ctx, "busy"); err != nil || c.State != store.StateReady || c.Workspace != busy.Workspace {
		t.Fatalf("busy conversation = %+v, %v; want still ready", c, err)
	}
	if got := h.metric(t, "workspaced_gc_actions_total", "action", workers.GCIdle); got != 1 {
		t.Errorf("idle releases counted = %v, want 1", got)
	}
}

// runOrphan starts a container by hand, sleeping, with labels.
func (h *harness) runOrphan(t *testing.T, labels map[string]string) string {
	t.Helper()
	ctx := testCtx(t, time.Minute)
	labels[testLabel] = h.testID // the test's cleanup removes it either way
	c, err := h.cli.ContainerCreate(ctx, &container.Config{
		Image: testImage(), Entrypoint: []string{"/bin/sleep", "600"}, Labels: labels,
	}, &container.HostConfig{NetworkMode: "none"}, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.cli.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	return c.ID
}

func (h *harness) exists(t *testing.T, id string) bool {
	t.Helper()
	_, err := h.cli.ContainerInspect(testCtx(t, 10*time.Second), id)
	if cerrdefs.IsNotFound(err) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true
}

// An orphan started by hand with our labels is reaped once past the grace
// period (dry run first: only counted); one without our labels, and a
// tracked workspace, are untouched.
func TestGCReapsLabelledOrphansOnly(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	ctx := testCtx(t, 2*time.Minute)
	tracked := h.acquire(t, h.prov, "tracked")
	old := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339Nano)
	ours := h.runOrphan(t, map[string]string{docker.LabelManagedBy: docker.ManagedBy, docker.LabelCreatedAt: old})
	young := h.runOrphan(t, map[string]string{docker.LabelManagedBy: docker.ManagedBy,
		docker.LabelCreatedAt: time.Now().UTC().Format(time.RFC3339Nano)})
	foreign := h.runOrphan(t, map[string]string{"io.example.other": "x", docker.LabelCreatedAt: old})
	rec := workers.NewReconciler(h.rt, h.st, h.m, workers.ReconcilerOptions{Logger: testLogger(t)})
	opts := workers.GCOptions{OrphanGrace: 10 * time.Minute, DryRun: true, Holder: "gc-test", Logger: testLogger(t)}

	dry := workers.NewGC(h.rt, h.st, nil, rec, h.m, opts)
	if err := dry.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if !h.exists(t, ours) {
		t.Fatal("dry run stopped the orphan")
	}
	if got := h.metric(t, "workspaced_gc_actions_total", "mode", "dry_run"); got != 1 {
		t.Fatalf("dry-run orphans counted = %v, want 1", got)
	}

	opts.DryRun = false
	if err := workers.NewGC(h.rt, h.st, nil, rec, h.m, opts).Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if h.exists(t, ours) {
		t.Fatal("labelled orphan still there")
	}
	for name, id := range map[string]string{"young": young, "foreign": foreign, "tracked": tracked.Workspace} {
		if !h.exists(t, id) {
			t.Fatalf("%s container was reaped", name)
		}
	}
}

// A pool workspace claimed but never handed over (the worker crashed) is
// stopped once stuck, and its waiters are told.
func TestGCStopsStuckClaim(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	ctx := testCtx(t, 2*time.Minute)
	stop := runReplenisher(t, h.replenisher(t, 1, 1))
	h.waitPool(t, func(c store.PoolCounts) bool { return c.Available == 1 })
	stop()
	h.claim(t, "stuck")
	cl, err := h.st.ClaimPoolWorkspace(ctx, "stuck", 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	gc := workers.NewGC(h.rt, h.later(time.Hour), nil, nil, h.m, workers.GCOptions{
		StuckTimeout: 5 * time.Minute, OrphanGrace: 24 * time.Hour, Logger: testLogger(t),
		Now: func() time.Time { return time.Now().Add(time.Hour) },
	})
	if err := gc.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	c := h.waitFor(t, "stuck", done)
	if c.State != store.StateFailed {
		t.Fatalf("conversation = %+v, want failed", c)
	}
	if _, err := h.rt.Inspect(ctx, cl.Workspace.ID); !errors.Is(err, workspace.ErrNotFound) {
		t.Fatalf("stuck workspace still there: %v", err)
	}
}

// restorerFunc adapts a function to workers.Restorer.
type restorerFunc func(ctx context.Context, t workspace.RestoreTarget) (bool, error)

func (f restorerFunc) RestoreCheckpoint(ctx context.Context, t workspace.RestoreTarget) (*workspace.Checkpoint, error) {
	ok, err := f(ctx, t)
	if !ok || err != nil {
		return nil, err
	}
	return &workspace.Checkpoint{ID: "20260102T030405.000000006Z"}, nil
}

// Cold path: files are restored before ready; a terminal restore failure
// (a corrupt snapshot) fails the conversation at once instead of retrying.
func TestColdPathRestoresBeforeReady(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []workspace.RestoreTarget
	h := newHarness(t, harnessOptions{restorer: restorerFunc(func(_ context.Context, tg workspace.RestoreTarget) (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, tg)
		if tg.Conversation == "corrupt" {
			return false, workspace.Terminal(errors.New("snapshot checksum mismatch"))
		}
		return true, nil
	})})
	c := h.acquire(t, h.prov, "restored")
	mu.Lock()
	if len(got) != 1 || got[0].Workspace != c.Workspace || got[0].Tenant != "tenant" || got[0].Endpoint != c.Endpoint {
		t.Fatalf("restores = %+v, want one into %s", got, c.Workspace)
	}
	mu.Unlock()
	h.claim(t, "corrupt")
	if err := provision(h.prov)(requested(t, "corrupt")); err != nil {
		t.Fatal(err)
	}
	if c := h.waitFor(t, "corrupt", done); c.State != store.StateFailed || !strings.Contains(c.Error, "checksum") {
		t.Fatalf("conversation = %+v, want failed with the restore error", c)
	}
}
