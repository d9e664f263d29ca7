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
// goroutines and CPU per open stream (against the same process with the
// agents, API and Redis client started but idle), and the share of live
// heap allocated by the API (handlers, sse) versus agents and clients;
// every stream must deliver all 100 lines and its final event.
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
	srv, err := handlers.New(handlers.Options{Store: apiStore{st}, Commands: bs.Commands(), Transports: tr, Keys: keys,
		Heartbeat: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	b.Cleanup(func() { stopServer(b, srv) })
	b.Cleanup(hs.Close)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	b.Cleanup(hc.CloseIdleConnections)

	runtime.GC()
	rss0, g0, cpu0 := rssKiB(), runtime.NumGoroutine(), cpuTime()
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
	rss1, g1, cpu1 := rssKiB(), runtime.NumGoroutine(), cpuTime()
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
	b.ReportMetric(per(float64(cpu1-cpu0)/float64(time.Millisecond)), "CPU-ms/stream")
	b.ReportMetric(per(float64(api)/1024), "API-heap-KiB/stream")
	b.ReportMetric(per(float64(other)/1024), "agent+client-heap-KiB/stream")
	b.ReportMetric(float64(lost), "lost-streams")
}

// writeHeapProfile writes the live heap at the barrier to path (for
// go tool pprof -sample_index=inuse_space): the same moment and sampling
// rate as the figures reported.
func writeHeapProfile(b *testing.B, path string) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		b.Fatal(err)
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

// memProfileRate samples one allocation per 4 KiB during the scale run.
const memProfileRate = 4096

// liveHeapShare estimates the live heap by who allocated it: the API (a
// stack through package handlers and not through the agent or the test's
// clients) versus the rest (agents, clients, and the connection buffers
// net/http allocates before any handler runs, the API's included). Sampled
// bytes are scaled up as pprof does.
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
	for _, r := range recs {
		inuse := r.InUseBytes()
		if inuse == 0 || r.AllocObjects == 0 {
			continue
		}
		avg := float64(r.AllocBytes) / float64(r.AllocObjects)
		inuse = int64(float64(inuse) / (1 - math.Exp(-avg/memProfileRate)))
		fr := runtime.CallersFrames(r.Stack())
		isAPI, isAgent := false, false
		for {
			f, more := fr.Next()
			switch {
			case strings.Contains(f.Function, "/agent."), strings.Contains(f.Function, "handlers_test."):
				isAgent = true
			case strings.Contains(f.Function, "/handlers."):
				isAPI = true
			}
			if !more {
				break
			}
		}
		if isAPI && !isAgent {
			api += inuse
		} else {
			other += inuse
		}
	}
	return api, other
}
