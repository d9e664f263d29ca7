package handlers_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/workspaced/workspaced/internal/testenv"
)

// benchScaleProcess measures the API alone: the real workspaced binary,
// built here, runs `workspaced api` in a process of its own on the
// fixture's Redis, with the Docker runtime whose socket base path is the
// fixture's directory, so its transport dials the agents' sockets as it
// would a container's (the API role creates no container: every
// conversation is already bound and ready). Its RSS (VmRSS) and CPU
// (utime+stime) come from /proc/<pid>; its goroutines, heap in use and
// goroutine stacks from its /metrics, each right after a collection forced
// through its profile listener (PPROF_ADDR, /debug/pprof/heap?gc=1):
// before the streams open and at the barrier, and the CPU until every
// stream has ended. The agents and the clients stay in this process.
func benchScaleProcess(b *testing.B) {
	if b.N > 1 {
		return
	}
	docker := testenv.Docker(b) // the Docker runtime negotiates with the engine at start
	bin := buildWorkspaced(b)
	f := newScaleFixture(b)
	deployment := fmt.Sprintf("bench-scale-%d", os.Getpid())
	profile := os.Getenv("BENCH_HEAPPROFILE")
	api := startAPIProcess(b, bin, f, deployment, profile != "")

	idle := ""
	if profile != "" {
		idle = profile + ".idle" // the base of go tool pprof -diff_base
	}
	s0 := api.sample(b, idle)
	var s1 apiSample
	lost := f.run(b, api.url, func() { s1 = api.sample(b, profile) })
	cpu2 := procCPU(b, api.pid)
	api.stop(b)
	if cs := testenv.Labelled(b, docker, "workspaced.deployment", deployment); len(cs) != 0 {
		b.Errorf("the API created %d containers", len(cs))
	}

	per := func(v float64) float64 { return v / float64(f.n) }
	b.ReportMetric(float64(f.n), "streams")
	b.ReportMetric(per(float64(s1.rssKiB-s0.rssKiB)), "RSS-KiB/stream")
	b.ReportMetric(per(s1.heapInuse-s0.heapInuse)/1024, "heap-KiB/stream")
	b.ReportMetric(per(s1.stackInuse-s0.stackInuse)/1024, "stack-KiB/stream")
	b.ReportMetric(per(s1.goroutines-s0.goroutines), "goroutines/stream")
	b.ReportMetric(per(float64(cpu2-s0.cpu)/float64(time.Millisecond)), "CPU-ms/stream")
	b.ReportMetric(float64(s0.rssKiB)/1024, "idle-RSS-MiB")
	b.ReportMetric(float64(lost), "lost-streams")
}

// buildWorkspaced builds cmd/workspaced into a temporary directory.
func buildWorkspaced(b *testing.B) string {
	dir, err := os.MkdirTemp("", "wsbin")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = os.RemoveAll(dir) })
	cmd := exec.Command("go", "build", "-o", dir, "./cmd/workspaced")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build workspaced: %v\n%s", err, out)
	}
	return filepath.Join(dir, "workspaced")
}

// apiProcess is `workspaced api` running as a child process.
type apiProcess struct {
	cmd    *exec.Cmd
	pid    int
	url    string // the API
	pprof  string // its profile listener
	log    string // its log file
	exited chan error
	hc     *http.Client // for its metrics and profiles
}

// startAPIProcess starts the API on f's Redis and sockets and waits until
// it serves. Heartbeats and the silence watchdog are an hour, as in the
// in-process run (the agents send no heartbeats and the runs wait at the
// barrier); the per-client connection cap is off, every client of the
// benchmark having the same address. sampleHeap makes the runtime sample
// one allocation per memProfileRate bytes, as in-process, for the profile.
func startAPIProcess(b *testing.B, bin string, f *scaleFixture, deployment string, sampleHeap bool) *apiProcess {
	p := &apiProcess{log: filepath.Join(f.dir, "workspaced.log"), exited: make(chan error, 1), hc: &http.Client{Transport: &http.Transport{}}}
	logf, err := os.Create(p.log)
	if err != nil {
		b.Fatal(err)
	}
	defer logf.Close()
	p.cmd = exec.Command(bin, "api")
	p.cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "DOCKER_HOST=" + os.Getenv("DOCKER_HOST"),
		"HTTP_ADDR=127.0.0.1:0", "PPROF_ADDR=127.0.0.1:0",
		"REDIS_URL=" + f.redis.URL, "REDIS_KEY_PREFIX=bench:",
		"API_KEYS=" + keyA, "BUS=gochannel",
		"CONTAINER_MANAGER_TYPE=docker", "WORKSPACE_SOCKET_BASE_PATH=" + f.dir, "WORKSPACED_DEPLOYMENT=" + deployment,
		"SSE_HEARTBEAT_INTERVAL=1h", "RUN_SILENCE_TIMEOUT=1h", "HTTP_MAX_CONNS_PER_CLIENT=0",
		"SHUTDOWN_TIMEOUT=10s", "LOG_FORMAT=json",
	}
	if sampleHeap {
		p.cmd.Env = append(p.cmd.Env, "GODEBUG=memprofilerate="+strconv.Itoa(memProfileRate))
	}
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	p.pid = p.cmd.Process.Pid
	go func() { p.exited <- p.cmd.Wait() }()
	b.Cleanup(func() {
		p.hc.CloseIdleConnections()
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if b.Failed() {
			out, _ := os.ReadFile(p.log)
			b.Logf("workspaced api (pid %d) log:\n%s", p.pid, lastBytes(string(out), 4000))
		}
	})
	deadline := time.Now().Add(time.Minute)
	for p.url == "" || p.pprof == "" {
		select {
		case err := <-p.exited:
			p.exited <- err
			b.Fatalf("workspaced api exited at start: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			b.Fatal("workspaced api did not start within a minute")
		}
		p.readAddrs()
	}
	return p
}

// readAddrs takes the API's and the profile listener's addresses from the
// log lines that announce them.
func (p *apiProcess) readAddrs() {
	out, err := os.ReadFile(p.log)
	if err != nil {
		return
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var line struct {
			Msg       string
			Addr      string
			PprofAddr string `json:"pprof_addr"`
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			continue
		}
		switch line.Msg {
		case "workspaced started":
			p.url = "http://" + line.Addr
		case "profiles served":
			p.pprof = "http://" + line.PprofAddr
		}
	}
}

// stop ends the API with SIGTERM (its streams are over) and checks that it
// exits cleanly and is gone.
func (p *apiProcess) stop(b *testing.B) {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		b.Fatal(err)
	}
	select {
	case err := <-p.exited:
		p.exited <- err
		if err != nil {
			b.Errorf("workspaced api exited with %v, want 0", err)
		}
	case <-time.After(30 * time.Second):
		b.Fatal("workspaced api still running 30 s after SIGTERM")
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", p.pid)); !errors.Is(err, os.ErrNotExist) {
		b.Errorf("workspaced api (pid %d) is still there after it exited: %v", p.pid, err)
	}
}

// apiSample is the API process's state at one moment.
type apiSample struct {
	rssKiB                            int64
	cpu                               time.Duration
	goroutines, heapInuse, stackInuse float64
}

// sample forces a collection in the API (writing the heap profile to
// profile, and the goroutines as text to profile.goroutines, unless
// profile is empty), then reads its RSS, CPU and metrics.
func (p *apiProcess) sample(b *testing.B, profile string) apiSample {
	heap := io.Discard
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		heap = f
		p.get(b, "/debug/pprof/goroutine?debug=1", profile+".goroutines")
	}
	p.fetch(b, p.pprof+"/debug/pprof/heap?gc=1", heap)
	s := apiSample{rssKiB: procRSSKiB(b, p.pid), cpu: procCPU(b, p.pid)}
	var m bytes.Buffer
	p.fetch(b, p.url+"/metrics", &m)
	for _, g := range []struct {
		name string
		v    *float64
	}{{"go_goroutines", &s.goroutines}, {"go_memstats_heap_inuse_bytes", &s.heapInuse}, {"go_memstats_stack_inuse_bytes", &s.stackInuse}} {
		*g.v = metricValue(b, m.String(), g.name)
	}
	return s
}

// get writes the profile listener's answer at path to the file out.
func (p *apiProcess) get(b *testing.B, path, out string) {
	f, err := os.Create(out)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	p.fetch(b, p.pprof+path, f)
}

func (p *apiProcess) fetch(b *testing.B, url string, w io.Writer) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := p.hc.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("GET %s: %s", url, resp.Status)
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		b.Fatalf("GET %s: %v", url, err)
	}
}

// metricValue is the value of an unlabelled metric in a Prometheus text
// exposition.
func metricValue(b *testing.B, text, name string) float64 {
	for line := range strings.Lines(text) {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				b.Fatalf("metric %s: %v", name, err)
			}
			return f
		}
	}
	b.Fatalf("no metric %s", name)
	return 0
}

// procRSSKiB is a process's resident set size (VmRSS).
func procRSSKiB(b *testing.B, pid int) int64 {
	out, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(out)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				b.Fatalf("VmRSS of %d: %v", pid, err)
			}
			return kb
		}
	}
	b.Fatalf("no VmRSS for %d", pid)
	return 0
}

// procCPU is a process's user+system CPU time (utime and stime of
// /proc/<pid>/stat, in clock ticks of 10 ms: Linux's USER_HZ).
func procCPU(b *testing.B, pid int) time.Duration {
	out, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name, which is in parentheses and may
	// hold spaces: state is field 3, utime 14, stime 15.
	i := bytes.LastIndexByte(out, ')')
	fields := strings.Fields(string(out[i+1:]))
	if i < 0 || len(fields) < 13 {
		b.Fatalf("/proc/%d/stat: %q", pid, out)
	}
	var ticks int64
	for _, f := range fields[11:13] {
		t, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			b.Fatalf("/proc/%d/stat: %v", pid, err)
		}
		ticks += t
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// lastBytes is the end of s, at most n bytes of it.
func lastBytes(s string, n int) string {
	return s[max(0, len(s)-n):]
}
