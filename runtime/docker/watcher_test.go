package docker

import (
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/client"

	"github.com/workspaced/workspaced/events"
	"github.com/workspaced/workspaced/runtime/runtimetest"
	"github.com/workspaced/workspaced/workspace"
)

// chanSink hands every envelope to a channel. When gate is set, a publish
// first reports on entered and waits for gate to close.
type chanSink struct {
	out     chan events.TaskStateChange
	entered chan struct{}
	gate    chan struct{}
}

func newChanSink() *chanSink { return &chanSink{out: make(chan events.TaskStateChange, 256)} }

func (s *chanSink) PublishTaskStateChange(ctx context.Context, e events.TaskStateChange) error {
	// The envelope must survive the real codec, as on the bus.
	b, err := events.EncodeTaskStateChange(e)
	if err != nil {
		return err
	}
	if e, err = events.DecodeTaskStateChange(b); err != nil {
		return err
	}
	if s.gate != nil {
		select {
		case s.entered <- struct{}{}:
		default:
		}
		select {
		case <-s.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	select {
	case s.out <- e:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// next waits for the first envelope about id with lastStatus status
// (skipping others, e.g. replayed duplicates).
func (s *chanSink) next(t *testing.T, id, status string, match func(events.TaskStateChange) bool) events.TaskStateChange {
	t.Helper()
	deadline := time.NewTimer(time.Minute)
	defer deadline.Stop()
	for {
		select {
		case e := <-s.out:
			if e.Detail.TaskArn == id && e.Detail.LastStatus == status && (match == nil || match(e)) {
				return e
			}
		case <-deadline.C:
			t.Fatalf("no %s envelope for %s within a minute", status, id)
		}
	}
}

// runWatcher runs w until the test ends.
func runWatcher(t *testing.T, w *Watcher) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watcher.Run: %v", err)
		}
	})
}

func isDie(e events.TaskStateChange) bool {
	return strings.Contains(e.Detail.StoppedReason, "exit code")
}

func TestWatcherStartKillStop(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	sink := newChanSink()
	runWatcher(t, NewWatcher(e.cli, WatcherOptions{Labels: map[string]string{testLabel: e.testID}, Logger: testLogger(t)}, sink))

	ctx := testCtx(t, 2*time.Minute)
	info, err := e.rt.Start(ctx, workspace.StartSpec{Token: runtimetest.Token(t), Conversation: "conv-w"})
	if err != nil {
		t.Fatal(err)
	}
	running := sink.next(t, info.ID, "RUNNING", nil)
	if running.Source != events.SourceDocker || running.DetailType != "ECS Task State Change" || running.Detail.DesiredStatus != "RUNNING" ||
		running.Detail.Group != "conversation:conv-w" || running.Detail.StartedBy != "workspaced" || running.Detail.StartedAt == nil {
		t.Errorf("RUNNING envelope %+v", running)
	}

	if err := e.cli.ContainerKill(ctx, info.ID, "SIGKILL"); err != nil {
		t.Fatal(err)
	}
	died := sink.next(t, info.ID, "STOPPED", nil)
	c := died.Detail.Containers[0]
	if c.ExitCode == nil || *c.ExitCode != 137 || !strings.Contains(died.Detail.StoppedReason, "SIGKILL") ||
		died.Detail.StopCode != "UserInitiated" || died.Detail.DesiredStatus != "STOPPED" || died.Detail.StoppedAt == nil {
		t.Errorf("STOPPED envelope after kill: %+v (container %+v)", died.Detail, c)
	}

	if err := e.rt.Stop(ctx, info.ID, "test"); err != nil {
		t.Fatal(err)
	}
	destroyed := sink.next(t, info.ID, "STOPPED", func(e events.TaskStateChange) bool { return e.Detail.Version > died.Detail.Version })
	if destroyed.Detail.StoppedReason != died.Detail.StoppedReason {
		t.Errorf("destroy envelope reason %q, want die's %q", destroyed.Detail.StoppedReason, died.Detail.StoppedReason)
	}
	if !(running.Detail.Version < died.Detail.Version && died.Detail.Version < destroyed.Detail.Version) {
		t.Errorf("versions %d, %d, %d do not strictly increase", running.Detail.Version, died.Detail.Version, destroyed.Detail.Version)
	}
}

// engineProxy forwards a Unix socket to the engine's and can sever every
// connection (and refuse new ones) on demand: a dropped event stream.
type engineProxy struct {
	path   string
	target string
	ln     net.Listener
	wg     sync.WaitGroup

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]struct{}
}

func newEngineProxy(t *testing.T, target string) *engineProxy {
	t.Helper()
	p := &engineProxy{path: filepath.Join(t.TempDir(), "e.sock"), target: target, conns: map[net.Conn]struct{}{}}
	ln, err := net.Listen("unix", p.path)
	if err != nil {
		t.Fatal(err)
	}
	p.ln = ln
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		_ = ln.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *engineProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		up, err := net.Dial("unix", p.target)
		if err != nil {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

func (p *engineProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	_ = dst.Close()
	_ = src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// cut severs every open connection and refuses new ones until restore.
func (p *engineProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		_ = c.Close()
	}
}

func (p *engineProxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

func TestWatcherResumesAfterTheStreamIsCut(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	target, ok := strings.CutPrefix(e.cli.DaemonHost(), "unix://")
	if !ok {
		t.Fatalf("engine at %s: this test proxies a Unix socket", e.cli.DaemonHost())
	}
	proxy := newEngineProxy(t, target)
	pcli, err := client.NewClientWithOpts(client.WithHost("unix://"+proxy.path), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pcli.Close() })

	sink := newChanSink()
	w := NewWatcher(pcli, WatcherOptions{
		Labels:     map[string]string{testLabel: e.testID},
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		Logger: testLogger(t),
	}, sink)
	runWatcher(t, w)

	ctx := testCtx(t, 2*time.Minute)
	info, err := e.rt.Start(ctx, workspace.StartSpec{Token: runtimetest.Token(t), Pool: true})
	if err != nil {
		t.Fatal(err)
	}
	running := sink.next(t, info.ID, "RUNNING", nil)
	if running.Detail.Group != "pool" {
		t.Errorf("group %q, want pool", running.Detail.Group)
	}

	// While the watcher cannot reach the engine, the workspace dies.
	proxy.cut()
	if err := e.cli.ContainerKill(ctx, info.ID, "SIGKILL"); err != nil {
		t.Fatal(err)
	}
	e.waitExited(t, info.ID)
	proxy.restore()

	died := sink.next(t, info.ID, "STOPPED", isDie)
	if died.Detail.Version <= running.Detail.Version {
		t.Errorf("STOPPED version %d not after RUNNING %d", died.Detail.Version, running.Detail.Version)
	}
	if w.Stats().Reconnects == 0 {
		t.Error("Stats().Reconnects = 0 after a cut")
	}
}

func TestWatcherDropsRatherThanStallWhenTheSinkIsSlow(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	sink := newChanSink()
	sink.gate, sink.entered = make(chan struct{}), make(chan struct{}, 1)
	w := NewWatcher(e.cli, WatcherOptions{Labels: map[string]string{testLabel: e.testID}, QueueSize: 1, Logger: testLogger(t)}, sink)
	dropped := make(chan struct{}, 16)
	w.onDrop = func() { dropped <- struct{}{} }
	runWatcher(t, w)

	ctx := testCtx(t, 2*time.Minute)
	info, err := e.rt.Start(ctx, workspace.StartSpec{Token: runtimetest.Token(t)})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, sink.entered, "the sink to receive RUNNING") // and block in it
	// die fills the one-slot queue, destroy overflows it.
	if err := e.rt.Stop(ctx, info.ID, "test"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, dropped, "an envelope to be dropped")
	close(sink.gate)
	sink.next(t, info.ID, "RUNNING", nil)
	sink.next(t, info.ID, "STOPPED", nil)
	// (Published counts after the sink returns, so it may lag here.)
	if s := w.Stats(); s.Dropped == 0 {
		t.Errorf("stats %+v, want drops", s)
	}
}

func waitFor(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(time.Minute):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func TestWatcherRunReturnsWhenCancelled(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	w := NewWatcher(e.cli, WatcherOptions{Logger: testLogger(t)}, newChanSink())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	cancel()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Run did not return after cancel")
	}
}
