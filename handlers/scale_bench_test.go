package handlers_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/workspaced/workspaced/agent/client"
	"github.com/workspaced/workspaced/events/bus"
	"github.com/workspaced/workspaced/handlers"
	"github.com/workspaced/workspaced/internal/redistest"
	"github.com/workspaced/workspaced/sse"
	"github.com/workspaced/workspaced/store"
	"github.com/workspaced/workspaced/workspace"
)

// agentSockets maps each in-process agent's endpoint to a pooled transport.
type agentSockets struct {
	mu sync.Mutex
	rt map[string]http.RoundTripper
}

func (a *agentSockets) Transport(endpoint string) (http.RoundTripper, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if rt, ok := a.rt[endpoint]; ok {
		return rt, nil
	}
	return nil, fmt.Errorf("no agent at %s", endpoint)
}

// BenchmarkScale opens BENCH_STREAMS (default 1000) concurrent streams
// through one API, each for its own conversation bound, ready, to its own
// workspace, every workspace an in-process agent (the real agent package)
// on its own Unix socket. Each run prints 50 lines, waits at a barrier
// (a line on a FIFO the benchmark writes once every stream has its 50
// events), then prints 50 more; every stream must deliver all 100 lines
// and its final event (lost-streams counts those that did not).
//
// api=process measures the API exactly: the real workspaced binary, API
// role only, in a process of its own (benchScaleProcess). api=in-process
// runs the API in the benchmark's process, beside the agents and clients,
// and can only split the heap and goroutines by allocating stack
// (benchScaleInProcess). BENCH_HEAPPROFILE names a file for the API's
// heap profile at the barrier (and its goroutines, as text, in
// <file>.goroutines), and before the streams open in <file>.idle; the
// in-process run writes <file>.inprocess.
func BenchmarkScale(b *testing.B) {
	b.Run("api=process", benchScaleProcess)
	b.Run("api=in-process", benchScaleInProcess)
}

// scaleFixture is what both measurements share: n agents on Unix sockets
// under one socket base path, each bound, ready, to its own conversation
// in a real Redis, and the barrier the runs wait at.
type scaleFixture struct {
	n         int
	dir       string // socket base path: <dir>/<token>/agent.sock
	fifo      string
	barrier   *os.File
	redis     *redistest.Server
	keys      *handlers.Keys
	endpoints []string // "unix://<dir>/<token>/agent.sock", conversation c<i>'s
	body      string   // the execute request of every stream
}

// newScaleFixture starts the agents and Redis and binds the
// conversations. The file limit is raised first (a child API inherits it).
func newScaleFixture(b *testing.B) *scaleFixture {
	n := envInt("BENCH_STREAMS", 1000)
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < uint64(8*n+1024) {
		lim.Cur = min(lim.Max, uint64(8*n+1024))
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	dir, err := os.MkdirTemp("", "wsscale")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = os.RemoveAll(dir) })
	f := &scaleFixture{n: n, dir: filepath.Clean(dir), fifo: filepath.Join(dir, "barrier")}
	if err := syscall.Mkfifo(f.fifo, 0o600); err != nil {
		b.Fatal(err)
	}
	// Held open read-write: the runs' opens never block, their reads wait
	// for the lines written at the barrier.
	if f.barrier, err = os.OpenFile(f.fifo, os.O_RDWR, 0); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.barrier.Close() })
	f.body = fmt.Sprintf(`{"kind":"command","argv":["sh","-c","seq 1 50; read x < %s; seq 51 100"]}`, f.fifo)

	ctx := context.Background()
	f.redis = redistest.Start(b)
	st := store.New(f.redis.Client(b), store.Options{Prefix: "bench:"})
	if f.keys, err = handlers.ParseKeys(keyA, nil); err != nil {
		b.Fatal(err)
	}
	p, _ := f.keys.Lookup(secret(keyA))
	for i := range n {
		cid := fmt.Sprintf("c%d", i)
		token := "t-" + cid // the layout of the Docker runtime's socket directories
		adir := filepath.Join(f.dir, token)
		if err := os.Mkdir(adir, 0o755); err != nil {
			b.Fatal(err)
		}
		sock := filepath.Join(adir, "agent.sock")
		startAgent(b, adir, sock)
		endpoint := "unix://" + sock
		f.endpoints = append(f.endpoints, endpoint)
		bindReady(b, ctx, st, p, cid, workspace.Info{ID: "ws-" + cid, Token: token, Endpoint: endpoint, Status: workspace.StatusRunning})
	}
	return f
}

// run opens the n streams to the API at base, calls atBarrier once every
// stream has its first 50 events, releases the runs and returns the
// number of streams lost (each one's error is reported).
func (f *scaleFixture) run(b *testing.B, base string, atBarrier func()) (lost int) {
	ctx := context.Background()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: f.n}}
	defer hc.CloseIdleConnections()
	half := make(chan struct{}, f.n)
	errs := make(chan error, f.n)
	var wg sync.WaitGroup
	for i := range f.n {
		wg.Go(func() {
			errs <- scaleStream(ctx, hc, fmt.Sprintf("%s/v1/conversations/c%d/execute", base, i), f.body, half)
		})
	}
	for range f.n {
		select {
		case <-half:
		case err := <-errs:
			b.Fatalf("a stream ended before the barrier: %v", err)
		}
	}
	atBarrier()
	if _, err := f.barrier.WriteString(strings.Repeat("\n", f.n)); err != nil {
		b.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			lost++
			b.Error(err)
		}
	}
	return lost
}

// benchScaleInProcess runs the API in this process (the real handlers on
// the fixture's Redis), so the RSS, goroutines and stacks (at the barrier)
// and the CPU (until every stream has ended) it reports are the whole
// process's, agents and clients included; the API's share of the live
// heap and of the goroutines is estimated by allocating stack (see
// apiShare).
func benchScaleInProcess(b *testing.B) {
	if b.N > 1 {
		return
	}
	defer func(rate int) { runtime.MemProfileRate = rate }(runtime.MemProfileRate)
	runtime.MemProfileRate = memProfileRate
	f := newScaleFixture(b)
	ctx := context.Background()
	st := store.New(f.redis.Client(b), store.Options{Prefix: "bench:"})
	tr := &agentSockets{rt: map[string]http.RoundTripper{}}
	for _, endpoint := range f.endpoints {
		rt := client.UnixTransport(strings.TrimPrefix(endpoint, "unix://"))
		b.Cleanup(closeIdle(rt))
		tr.rt[endpoint] = rt
	}
	bs, err := bus.New(ctx, bus.Options{Kind: bus.KindGoChannel, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = bs.Close() })
	// The agents send no heartbeat comments (startAgent), so a run waiting
	// at the barrier is silent: RunSilence is past the longest wait, which
	// on a loaded machine exceeds the default 30 s (the first runs were
	// then rightly ended as workspace_lost).
	srv, err := handlers.New(handlers.Options{Store: apiStore{st}, Commands: bs.Commands(), Transports: tr, Keys: f.keys,
		Heartbeat: time.Hour, RunSilence: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	b.Cleanup(func() { stopServer(b, srv) })
	b.Cleanup(hs.Close)

	runtime.GC()
	rss0, g0, cpu0, stk0 := rssKiB(), runtime.NumGoroutine(), cpuTime(), stackBytes()
	apiG0 := apiGoroutines()
	var rss1, g1, stk1 int64
	var apiG1 float64
	var api, other int64
	lost := f.run(b, hs.URL, func() {
		runtime.GC()
		rss1, g1, stk1 = rssKiB(), int64(runtime.NumGoroutine()), stackBytes()
		apiG1 = apiGoroutines()
		api, other = liveHeapShare()
		if path := os.Getenv("BENCH_HEAPPROFILE"); path != "" {
			writeHeapProfile(b, path+".inprocess")
		}
	})
	cpu1 := cpuTime()
	per := func(v float64) float64 { return v / float64(f.n) }
	b.ReportMetric(float64(f.n), "streams")
	b.ReportMetric(per(float64(rss1-rss0)), "RSS-KiB/stream")
	b.ReportMetric(per(float64(g1-int64(g0))), "goroutines/stream")
	b.ReportMetric(per(apiG1-apiG0), "API-goroutines/stream")
	b.ReportMetric(per(float64(stk1-stk0)/1024), "stack-KiB/stream")
	b.ReportMetric(per(float64(cpu1-cpu0)/float64(time.Millisecond)), "CPU-ms/stream")
	b.ReportMetric(per(float64(api)/1024), "API-heap-KiB/stream")
	b.ReportMetric(per(float64(other)/1024), "agent+client-heap-KiB/stream")
	b.ReportMetric(float64(lost), "lost-streams")
}

// writeHeapProfile writes the live heap at the barrier to path (for
// go tool pprof -sample_index=inuse_space): the same moment and sampling
// rate as the figures reported; and the goroutines, as text, to
// path.goroutines.
func writeHeapProfile(b *testing.B, path string) {
	for _, p := range []struct {
		name, path string
		debug      int
	}{{"heap", path, 0}, {"goroutine", path + ".goroutines", 1}} {
		f, err := os.Create(p.path)
		if err != nil {
			b.Fatal(err)
		}
		err = pprof.Lookup(p.name).WriteTo(f, p.debug)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

// scaleStream reads one execute stream: 50 stdout events, a signal on
// half, then the rest; it fails unless lines 1..100 and done arrived.
func scaleStream(ctx context.Context, hc *http.Client, url, body string, half chan<- struct{}) error {
	rc, err := post(ctx, hc, url, secret(keyA), body)
	if err != nil {
		return err
	}
	defer rc.Close()
	rd := sse.NewReader(rc)
	n := 0
	for {
		ev, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%s: stream ended after %d lines without done", url, n)
		}
		if err != nil {
			return err
		}
		switch ev.Event {
		case "stdout":
			n++
			if ev.Data != strconv.Itoa(n) {
				return fmt.Errorf("%s: line %d is %q", url, n, ev.Data)
			}
			if n == 50 {
				half <- struct{}{}
			}
		case "done":
			if n != 100 {
				return fmt.Errorf("%s: done after %d lines, want 100", url, n)
			}
			return nil
		case "error":
			return fmt.Errorf("%s: error event %s", url, ev.Data)
		}
	}
}

// rssKiB is this process's resident set size.
func rssKiB() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb
		}
	}
	return 0
}

// Who holds a stack (an allocation's or a goroutine's), by its frames.
type holder int

const (
	heldByOther      holder = iota // agents, the benchmark's clients, the runtime
	heldByAPI                      // handlers, the relay, the run driver, the Redis client
	heldByServerConn               // a net/http server connection, before or beside its handler
	heldByClientConn               // a net/http client connection's own goroutines
)

// holderOf classifies a stack. Frames in the agent package or the
// benchmark's own code make it theirs; then package handlers or the
// Redis client (the API's store; the benchmark's setup shares it) make it
// the API's. A net/http connection's buffers and goroutines carry no
// frame of either: every stream has two server connections (the API's
// from its client, the agent's from the API) and two client connections
// (the benchmark's to the API, the API's to the agent), all with
// net/http's default buffers, so half of each kind is the API's.
func holderOf(fr *runtime.Frames) holder {
	h := heldByOther
	for {
		f, more := fr.Next()
		switch fn := f.Function; {
		case strings.Contains(fn, "/agent."), strings.Contains(fn, "handlers_test."):
			return heldByOther
		case strings.Contains(fn, "/handlers."), strings.Contains(fn, "github.com/redis/go-redis/"):
			h = heldByAPI
		case h != heldByAPI && (strings.HasPrefix(fn, "net/http.(*conn).") || strings.HasPrefix(fn, "net/http.(*connReader).")):
			h = heldByServerConn
		case h != heldByAPI && (strings.HasPrefix(fn, "net/http.(*persistConn).") || strings.HasPrefix(fn, "net/http.(*Transport).dialConn")):
			h = heldByClientConn
		}
		if !more {
			return h
		}
	}
}

// apiShare is the API's part of amounts by holder: its own, and half of
// the connections' (see holderOf).
func apiShare(by map[holder]float64) float64 {
	return by[heldByAPI] + (by[heldByServerConn]+by[heldByClientConn])/2
}

// memProfileRate samples one allocation per 4 KiB during the scale run.
const memProfileRate = 4096

// liveHeapShare estimates the live heap by holder (holderOf): the API's
// share and the rest (agents, clients, their halves of the connections).
// Sampled bytes are scaled up as pprof does.
func liveHeapShare() (api, other int64) {
	var recs []runtime.MemProfileRecord
	n, _ := runtime.MemProfile(nil, false)
	for {
		recs = make([]runtime.MemProfileRecord, n+64)
		var ok bool
		if n, ok = runtime.MemProfile(recs, false); ok {
			recs = recs[:n]
			break
		}
	}
	by := map[holder]float64{}
	total := 0.0
	for _, r := range recs {
		inuse := r.InUseBytes()
		if inuse == 0 || r.AllocObjects == 0 {
			continue
		}
		avg := float64(r.AllocBytes) / float64(r.AllocObjects)
		scaled := float64(inuse) / (1 - math.Exp(-avg/memProfileRate))
		by[holderOf(runtime.CallersFrames(r.Stack()))] += scaled
		total += scaled
	}
	a := apiShare(by)
	return int64(a), int64(total - a)
}

// apiGoroutines is the API's share of the live goroutines (holderOf).
func apiGoroutines() float64 {
	n, _ := runtime.GoroutineProfile(nil)
	var recs []runtime.StackRecord
	for {
		recs = make([]runtime.StackRecord, n+64)
		var ok bool
		if n, ok = runtime.GoroutineProfile(recs); ok {
			recs = recs[:n]
			break
		}
	}
	by := map[holder]float64{}
	for _, r := range recs {
		by[holderOf(runtime.CallersFrames(r.Stack()))]++
	}
	return apiShare(by)
}

// stackBytes is the memory of all goroutine stacks.
func stackBytes() int64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/stacks:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}
