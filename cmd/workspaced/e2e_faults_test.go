package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/workspaced/workspaced/internal/redistest"
	"github.com/workspaced/workspaced/internal/testenv"
	"github.com/workspaced/workspaced/sse"
	"github.com/workspaced/workspaced/store"
	"github.com/workspaced/workspaced/store/storetest"
)

// TestFaultWorkspaceKilledMidRun: docker kill during a run: the stream ends
// with workspace_lost, the next execute gets a new workspace.
func TestFaultWorkspaceKilledMidRun(t *testing.T) {
	t.Parallel()
	s := startStack(t, nil)
	ctx := ctxFor(t, 2*time.Minute)
	resp, err := s.post(ctx, "conv-midrun", `{"kind":"command","argv":["sh","-c","echo started; sleep 300"]}`)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rd := sse.NewReader(resp.Body)
	readUntilStdout(t, rd, "started")
	conv, err := s.store.Conversation(ctx, "conv-midrun")
	if err != nil || conv.Workspace == "" {
		t.Fatalf("conversation %+v, %v", conv, err)
	}
	if err := s.docker.ContainerKill(ctx, conv.Workspace, "KILL"); err != nil {
		t.Fatal(err)
	}
	var last sse.Event
	for {
		ev, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read stream after the kill: %v", err)
		}
		last = ev
	}
	if last.Event != "error" || !strings.Contains(last.Data, `"workspace_lost"`) {
		t.Fatalf("final event %+v, want error workspace_lost", last)
	}
	s.waitConversation("conv-midrun", func(c store.Conversation) bool { return c.Workspace != conv.Workspace })
	evs, err := s.exec(ctx, "conv-midrun", `{"kind":"command","argv":["echo","back"]}`)
	if err != nil || stdout(evs) != "back\n" || final(evs).Event != "done" {
		t.Fatalf("execute after the kill: %v %+v", err, evs)
	}
}

// TestFaultSIGTERMWhileDraining: SIGTERM with a request in flight: while
// it lasts, readiness and new requests get 503 (never "connection
// refused"), then the process exits 0. The listener stays open until
// nothing is in flight or the drain deadline passes.
func TestFaultSIGTERMWhileDraining(t *testing.T) {
	t.Parallel()
	backend, _ := bins.get(t)
	cli := testenv.Docker(t)
	testenv.Image(t, cli, testImage())
	rs := redistest.Start(t)
	storetest.Audit(t, rs, "") // the default prefix
	env, deployment, _ := stackEnv(t, rs.URL, map[string]string{"SHUTDOWN_TIMEOUT": "20s", "HTTP_BODY_TIMEOUT": "30s"})
	t.Cleanup(func() { removeDeployment(t, cli, deployment) })
	p := startProcess(t, backend, env)
	ctx := ctxFor(t, 2*time.Minute)

	// In flight: an execute whose body is not all sent. Expect:
	// 100-continue makes the server say when the handler (admitted,
	// reading the body) wants it.
	c, err := net.Dial("tcp", strings.TrimPrefix(p.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	if _, err := fmt.Fprintf(c, "POST /v1/conversations/conv-drain/execute HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n", testKey); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
		t.Fatalf("want 100 Continue, got %q, %v", line, err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.draining:
	case <-ctx.Done():
		t.Fatal("workspaced never logged that it drains")
	}
	ready, err := http.Get(p.url + "/health/ready")
	if err != nil {
		t.Fatalf("readiness while draining: %v", err)
	}
	ready.Body.Close()
	if ready.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("readiness while draining: %d, want 503", ready.StatusCode)
	}
	s := stack{t: t, url: p.url}
	_, err = s.post(ctx, "conv-drain-new", `{"kind":"command","argv":["true"]}`)
	if err == nil || !strings.HasPrefix(err.Error(), "503") || !strings.Contains(err.Error(), `"shutting_down"`) {
		t.Errorf("new execute while draining: %v, want 503 shutting_down", err)
	}
	// The request in flight ends (its client gives up): nothing is in
	// flight, the listener closes, the process exits 0.
	c.Close()
	select {
	case err := <-p.exited:
		if err != nil {
			t.Fatalf("workspaced exited with %v, want 0", err)
		}
	case <-ctx.Done():
		t.Fatal("workspaced did not exit after SIGTERM")
	}
}

// TestFaultScratchFull: every writable mount filled: ENOSPC in the run's
// output (not an OOM kill), the workspace and its files stay, runs score
// above the agent for the OOM killer. The next run is on the same
// workspace.
func TestFaultScratchFull(t *testing.T) {
	t.Parallel()
	s := startStack(t, nil)
	ctx := ctxFor(t, 3*time.Minute)
	if evs, err := s.exec(ctx, "conv-full", `{"kind":"command","argv":["sh","-c","echo kept > /workspace/kept"]}`); err != nil || final(evs).Event != "done" {
		t.Fatalf("write a file: %v %+v", err, evs)
	}
	before, err := s.store.Conversation(ctx, "conv-full")
	if err != nil || before.Workspace == "" {
		t.Fatalf("conversation %+v, %v", before, err)
	}
	mounts := []string{"/tmp", "/var/tmp", "/home/appuser/.cache", "/home/appuser", "/workspace", "/dev/shm"}
	fill := `for d in ` + strings.Join(mounts, " ") + `; do
  out=$(dd if=/dev/zero of=$d/fill bs=1M 2>&1)
  case "$out" in *"No space left on device"*) echo "$d: ENOSPC" ;; *) echo "$d: $out" ;; esac
done`
	body, _ := json.Marshal(map[string]any{"kind": "command", "argv": []string{"sh", "-c", fill}})
	evs, err := s.exec(ctx, "conv-full", string(body))
	if err != nil || final(evs).Event != "done" {
		t.Fatalf("fill: %v, final %+v\n%s", err, final(evs), stdout(evs))
	}
	out := stdout(evs)
	for _, d := range mounts {
		if !strings.Contains(out, d+": ENOSPC\n") {
			t.Errorf("filling %s did not end with ENOSPC:\n%s", d, out)
		}
	}
	evs, err = s.exec(ctx, "conv-full", `{"kind":"command","argv":["sh","-c","cat /workspace/kept; cat /proc/1/oom_score_adj; cat /proc/self/oom_score_adj"]}`)
	if err != nil || final(evs).Event != "done" {
		t.Fatalf("after the fill: %v %+v", err, evs)
	}
	lines := strings.Split(strings.TrimSpace(stdout(evs)), "\n")
	if len(lines) != 3 || lines[0] != "kept" {
		t.Fatalf("after the fill: %q, want the kept file and two scores", lines)
	}
	agentScore, _ := strconv.Atoi(lines[1])
	runScore, _ := strconv.Atoi(lines[2])
	if runScore <= agentScore {
		t.Errorf("oom_score_adj: agent (pid 1) %d, run %d; the run's must be higher", agentScore, runScore)
	}
	after, err := s.store.Conversation(ctx, "conv-full")
	if err != nil || after.Workspace != before.Workspace {
		t.Errorf("workspace %s → %s (%v): it should have stayed up", before.Workspace, after.Workspace, err)
	}
}
