package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/workspaced/workspaced/agent/api"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/workspaced/workspaced/agent"
	"github.com/workspaced/workspaced/agent/client"
	"github.com/workspaced/workspaced/sse"
)

var binDir string

func TestMain(m *testing.M) {
	var err error
	if binDir, err = os.MkdirTemp("", "agent-test-bin-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(binDir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

var builds sync.Map // package path -> *buildResult

type buildResult struct {
	once sync.Once
	path string
	err  error
}

// goBuild builds a main package of this module once per test binary.
func goBuild(t *testing.T, pkg string) string {
	t.Helper()
	v, _ := builds.LoadOrStore(pkg, &buildResult{})
	b := v.(*buildResult)
	b.once.Do(func() {
		b.path = filepath.Join(binDir, filepath.Base(pkg))
		cmd := exec.Command("go", "build", "-o", b.path, pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

func fakeClaude(t *testing.T) string {
	return goBuild(t, "github.com/workspaced/workspaced/internal/fakeclaude")
}

// testAgent is a Server serving on a Unix socket for one test.
type testAgent struct {
	srv     *agent.Server
	workDir string
	home    string // HOME of its runs: the stand-in keeps sessions there
	socket  string
	client  *client.Client
}

// shortTempDir returns a temp dir with a short path (Unix socket paths are
// limited to 108 bytes; t.TempDir() can be longer).
func shortTempDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "ag")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func startAgent(t *testing.T, mod func(*agent.Options)) *testAgent {
	t.Helper()
	opts := agent.Options{
		WorkDir:    t.TempDir(),
		Home:       t.TempDir(),
		ClaudePath: fakeClaude(t),
		TempDir:    t.TempDir(),
		KillGrace:  2 * time.Second,
		Subreaper:  true,
		Version:    "test",
		Logger:     testLogger(t),
	}
	if mod != nil {
		mod(&opts)
	}
	srv, err := agent.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(shortTempDir(t), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	rt := client.UnixTransport(sock)
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		rt.(interface{ CloseIdleConnections() }).CloseIdleConnections()
	})
	return &testAgent{srv: srv, workDir: opts.WorkDir, home: opts.Home, socket: sock, client: client.New(rt)}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// collect reads a stream to its end.
func collect(t *testing.T, st *client.Stream) []sse.Event {
	t.Helper()
	defer st.Close()
	var evs []sse.Event
	for {
		ev, err := st.Next()
		if errors.Is(err, io.EOF) {
			return evs
		}
		if err != nil {
			t.Fatalf("read stream: %v (after %d events)", err, len(evs))
		}
		evs = append(evs, ev)
	}
}

// waitFor reads events until one satisfies ok, returning those read.
func waitFor(t *testing.T, st *client.Stream, ok func(sse.Event) bool) []sse.Event {
	t.Helper()
	var evs []sse.Event
	for {
		ev, err := st.Next()
		if err != nil {
			t.Fatalf("stream ended before the awaited event: %v; got %+v", err, evs)
		}
		evs = append(evs, ev)
		if ok(ev) {
			return evs
		}
	}
}

func isSleeping(ev sse.Event) bool {
	return ev.Event == api.EventStderr && strings.Contains(ev.Data, "fakeclaude: sleeping")
}

// readPIDs reads the PID file fakeclaude's sleep: directive wrote.
func readPIDs(t *testing.T, file string) []int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("read pid file: %v", err)
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("pid file %q: %v", b, err)
		}
		pids = append(pids, n)
	}
	if len(pids) != 2 {
		t.Fatalf("pid file %q: want 2 pids", b)
	}
	return pids
}

// assertGone checks that no process of the run exists: each PID and the
// process group (led by the first PID) are gone (ESRCH), zombies included.
func assertGone(t *testing.T, pids []int) {
	t.Helper()
	for _, pid := range pids {
		if err := unix.Kill(pid, 0); !errors.Is(err, unix.ESRCH) {
			t.Errorf("process %d still exists: kill(pid, 0) = %v (%s)", pid, err, procState(pid))
		}
	}
	if err := unix.Kill(-pids[0], 0); !errors.Is(err, unix.ESRCH) {
		t.Errorf("process group %d still has members: kill(-pgid, 0) = %v", pids[0], err)
	}
}

func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return err.Error()
	}
	return string(b)
}

func waitIdle(t *testing.T, ta *testAgent) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := ta.srv.WaitIdle(ctx); err != nil {
		t.Fatalf("agent did not become idle: %v", err)
	}
}

func doneOf(t *testing.T, evs []sse.Event) api.Done {
	t.Helper()
	if len(evs) == 0 || evs[len(evs)-1].Event != api.EventDone {
		t.Fatalf("stream does not end with a done event: %+v", evs)
	}
	var d api.Done
	if err := json.Unmarshal([]byte(evs[len(evs)-1].Data), &d); err != nil {
		t.Fatalf("decode done: %v", err)
	}
	return d
}

// postRaw posts body to path and returns the status and body.
func postRaw(t *testing.T, ta *testAgent, path, body string) (int, string) {
	t.Helper()
	return doRaw(t, ta, "POST", path, strings.NewReader(body))
}

func doRaw(t *testing.T, ta *testAgent, method, path string, body io.Reader) (int, string) {
	t.Helper()
	rt := client.UnixTransport(ta.socket)
	defer rt.(interface{ CloseIdleConnections() }).CloseIdleConnections()
	req, err := http.NewRequestWithContext(testContext(t), method, "http://agent"+path, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func parsePIDs(t *testing.T, s string) []int {
	t.Helper()
	var pids []int
	for _, f := range strings.Fields(s) {
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("pids %q: %v", s, err)
		}
		pids = append(pids, n)
	}
	return pids
}

func contextWithCancel(t *testing.T) (context.Context, context.CancelFunc) {
	return context.WithCancel(testContext(t))
}
