package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/workspaced/workspaced/agent/api"
	"github.com/workspaced/workspaced/agent/client"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func build(t *testing.T, dir, pkg string) string {
	t.Helper()
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// TestSIGTERMMidRun runs the real binary, starts a run, sends SIGTERM and
// checks the agent exits 0 after killing the run's processes.
func TestSIGTERMMidRun(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin := t.TempDir()
	agentBin := build(t, bin, "github.com/workspaced/workspaced/cmd/workspace-agent")
	claude := build(t, bin, "github.com/workspaced/workspaced/internal/fakeclaude")
	sockDir, err := os.MkdirTemp("", "wa")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "agent.sock")

	cmd := exec.Command(agentBin)
	cmd.Env = []string{
		"WORKSPACE_SOCKET_PATH=" + sock,
		"WORKSPACE_DIR=" + t.TempDir(),
		"WORKSPACE_CLAUDE_PATH=" + claude,
		"WORKSPACE_KILL_GRACE=2s",
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	listening := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := false
		for sc.Scan() {
			t.Log(sc.Text())
			var rec struct{ Msg string }
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "listening" && !once {
				once = true
				close(listening)
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		exited <- cmd.Wait()
	}()
	reaped := false
	t.Cleanup(func() { // on a failure path: no logging after the test ends
		if !reaped {
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	select {
	case <-listening:
	case err := <-exited:
		reaped = true
		t.Fatalf("agent exited before listening: %v", err)
	case <-ctx.Done():
		t.Fatal("agent never listened")
	}

	rt := client.UnixTransport(sock)
	defer rt.(interface{ CloseIdleConnections() }).CloseIdleConnections()
	c := client.New(rt)
	pidfile := filepath.Join(t.TempDir(), "pids")
	st, err := c.Execute(ctx, api.ExecuteRequest{Prompt: "sleep:10m pidfile:" + pidfile})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for {
		ev, err := st.Next()
		if err != nil {
			t.Fatalf("stream ended before the run slept: %v", err)
		}
		if ev.Event == api.EventStderr && strings.Contains(ev.Data, "fakeclaude: sleeping") {
			break
		}
	}
	pids := readPIDs(t, pidfile)

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var last string
	for {
		ev, err := st.Next()
		if err != nil {
			break
		}
		last = ev.Event
	}
	if last != api.EventDone {
		t.Errorf("stream's last event = %q, want done", last)
	}
	select {
	case err := <-exited:
		reaped = true
		if err != nil {
			t.Fatalf("agent exit after SIGTERM = %v, want 0", err)
		}
	case <-ctx.Done():
		t.Fatal("agent did not exit after SIGTERM")
	}
	for _, pid := range pids {
		if err := unix.Kill(pid, 0); !errors.Is(err, unix.ESRCH) {
			t.Errorf("process %d survived the agent: %v", pid, err)
		}
	}
	if err := unix.Kill(-pids[0], 0); !errors.Is(err, unix.ESRCH) {
		t.Errorf("process group %d survived the agent: %v", pids[0], err)
	}
}

func readPIDs(t *testing.T, file string) []int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, n)
	}
	if len(pids) != 2 {
		t.Fatalf("pid file %q", b)
	}
	return pids
}
