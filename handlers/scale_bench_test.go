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
// through one API, each for its own conversation bound to its own
// workspace, every workspace an in-process agent (the real agent package)
// on its own Unix socket. Each run prints 50 lines, waits at a barrier
// (a line on a FIFO the test writes once every stream has its 50 events),
// then prints 50 more. At the barrier it reports the process's RSS,
// goroutines, goroutine stacks and CPU per open stream (against the same
// process with the agents, API and Redis client started but idle), and
// the API's share of the live heap and of the goroutines (see apiShare)
// versus the agents' and the clients'; every stream must deliver all 100
// lines and its final event. BENCH_HEAPPROFILE names a file for the heap
// profile at the barrier.
func BenchmarkScale(b *testing.B) {
	if b.N > 1 {
		return
	}
	n := envInt("BENCH_STREAMS", 1000)
	defer func(rate int) { runtime.MemProfileRate = rate }(runtime.MemProfileRate)
	runtime.MemProfileRate = memProfileRate
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
	fifo := filepath.Join(dir, "barrier")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		b.Fatal(err)
	}
	// Held open read-write: the runs' opens never block, their reads wait
	// for the lines written at the barrier.
	barrier, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { barrier.Close() })

	ctx := context.Background()
	st := store.New(redistest.NewClient(b), store.Options{Prefix: "bench:"})
	keys, err := handlers.ParseKeys(keyA, nil)
	if err != nil {
		b.Fatal(err)
	}
	p, _ := keys.Lookup(secret(keyA))
	tr := &agentSockets{rt: map[string]http.RoundTripper{}}
	for i := range n {
		adir := filepath.Join(dir, fmt.Sprintf("a%d", i))
		if err := os.Mkdir(adir, 0o755); err != nil {
			b.Fatal(err)
		}
		sock := filepath.Join(adir, "agent.sock")
		startAgent(b, adir, sock)
		endpoint := "unix://" + sock
		rt := client.UnixTransport(sock)
		b.Cleanup(closeIdle(rt))
		tr.rt[endpoint] = rt
		cid := fmt.Sprintf("c%d", i)
		bindReady(b, ctx, st, p, cid, workspace.Info{ID: "ws-" + cid, Token: "t-" + cid, Endpoint: endpoint, Status: workspace.StatusRunning})
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
	srv, err := handlers.New(handlers.Options{Store: apiStore{st}, Commands: bs.Commands(), Transports: tr, Keys: keys,
		Heartbeat: time.Hour, RunSilence: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	b.Cleanup(func() { stopServer(b, srv) })
	b.Cleanup(hs.Close)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	b.Cleanup(hc.CloseIdleConnections)

	runtime.GC()
	rss0, g0, cpu0, stk0 := rssKiB(), runtime.NumGoroutine(), cpuTime(), stackBytes()
	apiG0 := apiGoroutines()
	body := fmt.Sprintf(`{"kind":"command","argv":["sh","-c","seq 1 50; read x < %s; seq 51 100"]}`, fifo)
	half := make(chan struct{}, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs <- scaleStream(ctx, hc, fmt.Sprintf("%s/v1/conversations/c%d/execute", hs.URL, i), body, half)
		})
	}
	for range n {
		select {
		case <-half:
		case err := <-errs:
			b.Fatalf("a stream ended before the barrier: %v", err)
		}
	}
	runtime.GC()
	rss1, g1, cpu1, stk1 := rssKiB(), runtime.NumGoroutine(), cpuTime(), stackBytes()
	apiG1 := apiGoroutines()
	api, other := liveHeapShare()
	if path := os.Getenv("BENCH_HEAPPROFILE"); path != "" {
		writeHeapProfile(b, path)
	}
	if _, err := barrier.WriteString(strings.Repeat("\n", n)); err != nil {
		b.Fatal(err)
	}
	wg.Wait()
	close(errs)
	lost := 0
	for err := range errs {
		if err != nil {
			lost++
			b.Error(err)
		}
	}
	per := func(v float64) float64 { return v / float64(n) }
	b.ReportMetric(float64(n), "streams")
	b.ReportMetric(per(float64(rss1-rss0)), "RSS-KiB/stream")
	b.ReportMetric(per(float64(g1-g0)), "goroutines/stream")
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
