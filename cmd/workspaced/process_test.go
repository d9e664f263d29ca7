package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
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
}

// SIGTERM during a stream: the stream ends with a final event and the
// process exits 0 within its drain deadline.
func TestSIGTERMDuringStream(t *testing.T) {
	t.Parallel()
	backend, _ := bins.get(t)
	cli := testenv.Docker(t)
	testenv.Image(t, cli, testImage)
	rs := redistest.Start(t)
	storetest.Audit(t, rs, "") // the default prefix
	env, deployment, _ := stackEnv(t, rs.URL, map[string]string{"SHUTDOWN_TIMEOUT": "4s", "LOG_FORMAT": "json"})
	t.Cleanup(func() { removeDeployment(t, cli, deployment) })

	cmd := exec.Command(backend, "serve")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Env = append(cmd.Env, "PATH="+os.Getenv("PATH"), "DOCKER_HOST="+os.Getenv("DOCKER_HOST"))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	addr := make(chan string, 1)
	var logs bytes.Buffer
	var logsMu sync.Mutex
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logsMu.Lock()
			logs.WriteString(sc.Text() + "\n")
			logsMu.Unlock()
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "workspaced started" {
				addr <- line.Addr
			}
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			logsMu.Lock()
			t.Logf("workspaced log:\n%s", logs.String())
			logsMu.Unlock()
		}
	})
	ctx := ctxFor(t, 2*time.Minute)
	var s stack
	select {
	case a := <-addr:
		s = stack{t: t, url: "http://" + a}
	case err := <-exited:
		t.Fatalf("workspaced exited early: %v", err)
	case <-ctx.Done():
		t.Fatal("workspaced did not start")
	}

	resp, err := s.post(ctx, "conv-term", `{"kind":"command","argv":["sh","-c","echo started; sleep 300"]}`)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rd := sse.NewReader(resp.Body)
	for {
		ev, err := rd.Next()
		if err != nil {
			t.Fatalf("stream ended before the run started: %v", err)
		}
		if ev.Event == "stdout" && ev.Data == "started" {
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var last sse.Event
	for {
		ev, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read stream after SIGTERM: %v", err)
		}
		last = ev
	}
	if last.Event != "error" || !strings.Contains(last.Data, `"shutting_down"`) {
		t.Fatalf("final event %+v, want error shutting_down", last)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("workspaced exited with %v, want 0", err)
		}
	case <-ctx.Done():
		t.Fatal("workspaced did not exit after SIGTERM")
	}
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
