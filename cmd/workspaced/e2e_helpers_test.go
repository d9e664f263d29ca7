package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	dockerevents "github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	dockerclient "github.com/docker/docker/client"
	"github.com/redis/go-redis/v9"

	"github.com/workspaced/workspaced/config"
	"github.com/workspaced/workspaced/internal/redistest"
	"github.com/workspaced/workspaced/internal/testenv"
	"github.com/workspaced/workspaced/sse"
	"github.com/workspaced/workspaced/store"
	"github.com/workspaced/workspaced/store/storetest"
)

// defaultTestImage has busybox and the stand-in claude (make images).
const defaultTestImage = "workspaced/workspace:test"

// testImage is the workspace image of the end-to-end tests;
// WORKSPACE_TEST_IMAGE overrides it (a worktree's own build).
func testImage() string {
	if img := os.Getenv("WORKSPACE_TEST_IMAGE"); img != "" {
		return img
	}
	return defaultTestImage
}

const testKey = "e2e-key-0123456789abcdef"

// stack is a workspaced process (all roles) on a real redis-server, the
// real Docker engine and the gochannel bus, scoped to its own deployment
// label so parallel tests never see each other's workspaces.
type stack struct {
	t          testing.TB
	app        *App
	env        map[string]string
	url        string
	docker     *dockerclient.Client
	store      *store.Store
	rdb        *redis.Client
	deployment string
	sockets    string
	cancel     context.CancelFunc
	done       chan error
	stopOnce   *sync.Once
	logs       *logRecorder // what the process logged (run)
}

func randomName(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// stackEnv is the environment of a test deployment.
func stackEnv(t testing.TB, redisURL string, extra map[string]string) (map[string]string, string, string) {
	t.Helper()
	// Short paths: a Unix socket path must fit in 107 bytes.
	sockets, err := os.MkdirTemp("", "wse2e")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(sockets) })
	deployment := randomName("e2e-")
	env := map[string]string{
		"CONTAINER_MANAGER_TYPE":     "docker",
		"BUS":                        "gochannel",
		"HTTP_ADDR":                  "127.0.0.1:0",
		"API_KEYS":                   "e2e:" + testKey,
		"REDIS_URL":                  redisURL,
		"WORKSPACE_IMAGE":            testImage(),
		"WORKSPACE_SOCKET_BASE_PATH": sockets,
		"WORKSPACED_DEPLOYMENT":      deployment,
		"WORKSPACE_STOP_GRACE":       "1s",
		"PROVISION_TIMEOUT":          "60s",
		"SSE_HEARTBEAT_INTERVAL":     "1s",
		"LOG_LEVEL":                  "debug",
		"LOG_FORMAT":                 "text",
	}
	for k, v := range extra {
		env[k] = v
	}
	return env, deployment, sockets
}

// startStack runs workspaced in-process.
func startStack(t testing.TB, extra map[string]string) *stack {
	t.Helper()
	return startStackDeps(t, extra, appDeps{})
}

// startStackDeps runs workspaced in-process with injected dependencies.
func startStackDeps(t testing.TB, extra map[string]string, deps appDeps) *stack {
	t.Helper()
	cli := testenv.Docker(t)
	testenv.Image(t, cli, testImage())
	rs := redistest.Start(t)
	env, deployment, sockets := stackEnv(t, rs.URL, extra)
	cfg, err := config.LoadFrom(env)
	if err != nil {
		t.Fatal(err)
	}
	if !isBenchmark(t) {
		// Not under a benchmark: the audit's keyspace notifications (one
		// per write, to a subscriber) would be part of what it measures.
		storetest.Audit(t, rs, cfg.Redis.KeyPrefix) // checked after the process stopped
	}
	rdb := rs.Client(t)
	s := &stack{t: t, env: env, docker: cli, rdb: rdb,
		store:      store.New(rdb, store.Options{Prefix: cfg.Redis.KeyPrefix}),
		deployment: deployment, sockets: sockets}
	t.Cleanup(func() { removeDeployment(t, cli, deployment) })
	s.run(cfg, deps)
	return s
}

// run starts a workspaced process for the stack (again, after stop: a
// restart on the same Redis, socket directory and deployment).
func (s *stack) run(cfg config.Config, deps appDeps) {
	t := s.t
	tw := &testWriter{t: t}
	t.Cleanup(tw.close) // registered first: runs after the stack stopped
	if s.logs == nil {
		s.logs = &logRecorder{}
	}
	var out io.Writer = tw
	level := slog.LevelDebug
	if isBenchmark(t) {
		// A benchmark's log always prints; it formats its lines at
		// production's default level (info), and drops them.
		out, level = io.Discard, slog.LevelInfo
	}
	log := slog.New(s.logs.handler(slog.NewTextHandler(out, &slog.HandlerOptions{Level: level})))
	ctx, cancel := context.WithCancel(context.Background())
	app, err := newApp(ctx, cfg, Roles{API: true, Worker: true, Events: true, Pool: true, GC: true}, log, deps)
	if err != nil {
		cancel()
		t.Fatalf("NewApp: %v", err)
	}
	s.app, s.cancel, s.done = app, cancel, make(chan error, 1)
	s.url = "http://" + app.Addr().String()
	go func() { s.done <- app.Run(ctx) }()
	var once sync.Once
	t.Cleanup(func() { once.Do(s.stop) })
	s.stopOnce = &once
}

// stop shuts the process down and checks it stopped cleanly.
func (s *stack) stop() {
	s.cancel()
	select {
	case err := <-s.done:
		if err != nil {
			s.t.Errorf("workspaced stopped with error: %v", err)
		}
	case <-time.After(60 * time.Second):
		s.t.Errorf("workspaced did not stop within 60s")
	}
}

// isBenchmark reports whether t is a benchmark's (BenchmarkCompare).
func isBenchmark(t testing.TB) bool {
	_, ok := t.(*testing.B)
	return ok
}

// removeDeployment force-removes every container of a test deployment.
func removeDeployment(t testing.TB, cli *dockerclient.Client, deployment string) {
	testenv.RemoveLabelled(t, cli, deploymentLabel, deployment)
}

func listDeployment(t testing.TB, cli *dockerclient.Client, deployment string) []container.Summary {
	return testenv.Labelled(t, cli, deploymentLabel, deployment)
}

// running counts the deployment's running containers.
func (s *stack) running() []container.Summary {
	var out []container.Summary
	for _, c := range listDeployment(s.t, s.docker, s.deployment) {
		if c.State == "running" {
			out = append(out, c)
		}
	}
	return out
}

// watchDestroy returns a channel closed when the engine reports container
// id destroyed (removed). Call it before the action that removes it.
func (s *stack) watchDestroy(ctx context.Context, id string) <-chan struct{} {
	done := make(chan struct{})
	ctx, cancel := context.WithCancel(ctx)
	msgs, errs := s.docker.Events(ctx, dockerevents.ListOptions{Filters: filters.NewArgs(
		filters.Arg("type", "container"), filters.Arg("container", id), filters.Arg("event", "destroy"))})
	go func() {
		defer cancel()
		select {
		case <-msgs:
			close(done)
		case err := <-errs:
			s.t.Logf("docker events: %v", err)
		case <-ctx.Done():
		}
	}()
	return done
}

// exec posts an execute and returns the whole stream.
func (s *stack) exec(ctx context.Context, conv, body string) ([]sse.Event, error) {
	resp, err := s.post(ctx, conv, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return collect(resp.Body)
}

func (s *stack) post(ctx context.Context, conv, body string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url+"/v1/conversations/"+conv+"/execute", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return nil, errors.New(resp.Status + ": " + string(b))
	}
	return resp, nil
}

func (s *stack) request(method, path string) *http.Response {
	s.t.Helper()
	req, err := http.NewRequest(method, s.url+path, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// waitConversation blocks (Redis pub/sub, no polling) until cond holds.
func (s *stack) waitConversation(cid string, cond func(store.Conversation) bool) store.Conversation {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := s.store.WaitConversation(ctx, cid, cond)
	if err != nil {
		s.t.Fatalf("wait for conversation %s: %v", cid, err)
	}
	return c
}

func collect(r io.Reader) ([]sse.Event, error) {
	var evs []sse.Event
	rd := sse.NewReader(r)
	for {
		ev, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return evs, nil
		}
		if err != nil {
			return evs, err
		}
		evs = append(evs, ev)
	}
}

// names lists event types; data of stdout events are appended after ':'.
func names(evs []sse.Event) []string {
	out := make([]string, 0, len(evs))
	for _, ev := range evs {
		out = append(out, ev.Event)
	}
	return out
}

func final(evs []sse.Event) sse.Event {
	if len(evs) == 0 {
		return sse.Event{}
	}
	return evs[len(evs)-1]
}

func stdout(evs []sse.Event) string {
	var b strings.Builder
	for _, ev := range evs {
		if ev.Event == "stdout" {
			b.WriteString(ev.Data + "\n")
		}
	}
	return b.String()
}

// testWriter sends log lines to t.Log until the test ends.
type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) close() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

// buildBinary builds a command of this module into dir.
func buildBinary(t *testing.T, dir, pkg string) string {
	t.Helper()
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = "../.."
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// socketDirs lists the per-workspace socket directories under base (not
// the host-side claim records in .claims, nor any other dot entry).
func socketDirs(t *testing.T, base string) []string {
	t.Helper()
	entries, err := os.ReadDir(base)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	return out
}

// readUntilStdout reads rd until a stdout event whose data is line,
// failing the test if the stream ends first; it returns the events read.
func readUntilStdout(t *testing.T, rd *sse.Reader, line string) []sse.Event {
	t.Helper()
	var evs []sse.Event
	for {
		ev, err := rd.Next()
		if err != nil {
			t.Fatalf("stream ended before stdout %q: %v (events %v)", line, err, names(evs))
		}
		evs = append(evs, ev)
		if ev.Event == "stdout" && ev.Data == line {
			return evs
		}
	}
}
