package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/workspaced/workspaced/internal/redistest"
	"github.com/workspaced/workspaced/internal/testenv"
	"github.com/workspaced/workspaced/sse"
	"github.com/workspaced/workspaced/store/storetest"
)

// binaries builds workspaced and wsctl once per test binary.
type binaries struct {
	once     sync.Once
	dir      string
	err      error
	backend  string
	cli      string
	cleanups []func()
}

var bins binaries

func (b *binaries) get(t *testing.T) (backend, cli string) {
	t.Helper()
	b.once.Do(func() {
		b.dir, b.err = os.MkdirTemp("", "wsbin")
		if b.err != nil {
			return
		}
		for _, p := range []struct {
			out *string
			pkg string
		}{{&b.backend, "./cmd/workspaced"}, {&b.cli, "./cmd/wsctl"}} {
			cmd := exec.Command("go", "build", "-o", b.dir, p.pkg)
			cmd.Dir = "../.."
			if out, err := cmd.CombinedOutput(); err != nil {
				b.err = errors.New(string(out))
				return
			}
		}
		b.backend, b.cli = b.dir+"/workspaced", b.dir+"/wsctl"
	})
	if b.err != nil {
		t.Fatalf("build binaries: %v", b.err)
	}
	return b.backend, b.cli
}

func (b *binaries) cleanup() {
	if b.dir != "" {
		_ = os.RemoveAll(b.dir)
	}
	for _, f := range b.cleanups {
		f()
	}
}

// process is a workspaced binary running as a child process.
type process struct {
	cmd    *exec.Cmd
	url    string
	exited chan error
	// draining is closed when the process logs that it drains.
	draining chan struct{}
}

// startProcess runs `workspaced serve` with env and waits until it serves.
func startProcess(t *testing.T, backend string, env map[string]string) *process {
	t.Helper()
	cmd := exec.Command(backend, "serve")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Env = append(cmd.Env, "PATH="+os.Getenv("PATH"), "DOCKER_HOST="+os.Getenv("DOCKER_HOST"), "LOG_FORMAT=json")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, exited: make(chan error, 1), draining: make(chan struct{})}
	addr := make(chan string, 1)
	var logs bytes.Buffer
	var logsMu sync.Mutex
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			logsMu.Lock()
			logs.WriteString(sc.Text() + "\n")
			logsMu.Unlock()
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil {
				switch line.Msg {
				case "workspaced started":
					addr <- line.Addr
				case "shutting down api":
					close(p.draining)
				}
			}
		}
		p.exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			logsMu.Lock()
			t.Logf("workspaced (pid %d) log:\n%s", cmd.Process.Pid, logs.String())
			logsMu.Unlock()
		}
	})
	ctx := ctxFor(t, time.Minute)
	select {
	case a := <-addr:
		p.url = "http://" + a
	case err := <-p.exited:
		t.Fatalf("workspaced exited early: %v", err)
	case <-ctx.Done():
		t.Fatal("workspaced did not start")
	}
	return p
}

// SIGTERM during a stream that waits for nothing (the run is relayed):
// the stream ends with a retry hint instead of a final event, the process
// exits 0 within its drain deadline, and the run goes on: the client
// follows it on the other replica and gets the rest, once each.
func TestSIGTERMDuringStream(t *testing.T) {
	t.Parallel()
	testRelayFailover(t, syscall.SIGTERM)
}

// SIGKILL of the relaying replica: the other one takes the relay over
// from the agent's log after the relay lease lapses; the client gets the
// rest with no gap and no duplicate; the run's process is never restarted.
func TestSIGKILLOfRelayingReplica(t *testing.T) {
	t.Parallel()
	testRelayFailover(t, syscall.SIGKILL)
}

func testRelayFailover(t *testing.T, sig syscall.Signal) {
	backend, _ := bins.get(t)
	cli := testenv.Docker(t)
	testenv.Image(t, cli, testImage())
	rs := redistest.Start(t)
	storetest.Audit(t, rs, "") // the default prefix
	const shutdown = 6 * time.Second
	env, deployment, _ := stackEnv(t, rs.URL, map[string]string{"SHUTDOWN_TIMEOUT": shutdown.String(), "RUN_RELAY_LEASE_TTL": "2s"})
	t.Cleanup(func() { removeDeployment(t, cli, deployment) })
	a := startProcess(t, backend, env)
	b := startProcess(t, backend, env) // same Redis, deployment and socket directory
	ctx := ctxFor(t, 3*time.Minute)

	sa := stack{t: t, url: a.url}
	conv := randomName("conv-") // container names derive from it: unique on the shared engine
	resp, err := sa.post(ctx, conv, `{"kind":"command","argv":["sh","-c","echo pid $$; i=1; while [ $i -le 50 ]; do echo line-$i; i=$((i+1)); sleep 0.1; done"]}`)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rid := resp.Header.Get("Workspaced-Run-Id")
	var raw bytes.Buffer
	rd := sse.NewReader(io.TeeReader(resp.Body, &raw))
	var got []sse.Event
	for {
		ev, err := rd.Next()
		if err != nil {
			t.Fatalf("stream ended before the run printed: %v", err)
		}
		got = append(got, ev)
		if ev.Data == "line-5" {
			break
		}
	}
	sent := time.Now()
	if err := a.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	for {
		ev, err := rd.Next()
		if err != nil {
			break // EOF after a retry hint (SIGTERM), a cut connection (SIGKILL)
		}
		if ev.Event == "done" || ev.Event == "error" {
			t.Fatalf("the stream of the stopped replica ended with a final event %+v", ev)
		}
		got = append(got, ev)
	}
	if sig == syscall.SIGTERM {
		if !strings.Contains(raw.String(), "\nretry: ") {
			t.Errorf("the stream did not end with a retry hint:\n%s", tail(raw.String(), 400))
		}
		select {
		case err := <-a.exited:
			if err != nil {
				t.Fatalf("workspaced exited with %v, want 0", err)
			}
			if d := time.Since(sent); d > shutdown+5*time.Second {
				t.Errorf("workspaced took %s to exit, SHUTDOWN_TIMEOUT is %s", d, shutdown)
			}
		case <-ctx.Done():
			t.Fatal("workspaced did not exit after SIGTERM")
		}
	}
	// The client reconnects to the other replica with Last-Event-ID.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.url+"/v1/conversations/"+conv+"/runs/"+rid+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("Last-Event-ID", got[len(got)-1].ID)
	resp2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	if resp2.StatusCode != http.StatusOK {
		t.Fatalf("follow on the other replica: %s", resp2.Status)
	}
	rest, err := collect(resp2.Body)
	if err != nil {
		t.Fatal(err)
	}
	all := append(got, rest...)
	line, pids := 0, 0
	for i, ev := range all {
		if ev.ID != strconv.Itoa(i+1) {
			t.Fatalf("event %d has id %q: a gap or a duplicate in %v", i, ev.ID, names(all))
		}
		switch {
		case strings.HasPrefix(ev.Data, "pid "):
			pids++
		case ev.Event == "stdout":
			line++
			if ev.Data != "line-"+strconv.Itoa(line) {
				t.Fatalf("event %d = %q, want line-%d", i, ev.Data, line)
			}
		}
	}
	if last := final(all); line != 50 || pids != 1 || last.Event != "done" || !strings.Contains(last.Data, `"exit_code":0`) {
		t.Fatalf("%d lines, %d starts of the run, final %+v; want 50 lines, one start, done with exit 0", line, pids, last)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// wsctl exec against a running server prints the streamed output and
// exits with the run's exit code.
func TestWsctlExec(t *testing.T) {
	t.Parallel()
	_, wsctl := bins.get(t)
	s := startStack(t, nil)
	ctx := ctxFor(t, 2*time.Minute)
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr []string
	}{
		{"command", []string{"exec", "demo", "--", "sh", "-c", "echo hello; echo to-stderr >&2; exit 4"}, 4, "hello\n",
			[]string{"· queued", "· ready", "to-stderr", "· exit 4"}},
		{"claude", []string{"exec", "demo", "write", "a", "haiku"}, 0, "",
			[]string{"· session", "· result ok"}},
		{"status", []string{"status", "demo"}, 0, "", nil},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, wsctl, tt.args...)
		cmd.Env = []string{"WORKSPACED_URL=" + s.url, "WORKSPACED_API_KEY=" + testKey}
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if code != tt.wantCode {
			t.Errorf("%s: exit %d, want %d (stderr %s)", tt.name, code, tt.wantCode, stderr.String())
		}
		if tt.wantStdout != "" && stdout.String() != tt.wantStdout {
			t.Errorf("%s: stdout %q, want %q", tt.name, stdout.String(), tt.wantStdout)
		}
		for _, w := range tt.wantStderr {
			if !strings.Contains(stderr.String(), w) {
				t.Errorf("%s: stderr %q lacks %q", tt.name, stderr.String(), w)
			}
		}
		if tt.name == "claude" && !strings.Contains(stdout.String(), "haiku") {
			t.Errorf("claude reply not printed: %q", stdout.String())
		}
		if tt.name == "status" && !strings.Contains(stdout.String(), `"state": "ready"`) {
			t.Errorf("status output %q", stdout.String())
		}
	}
}
