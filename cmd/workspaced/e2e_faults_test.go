package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
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

// TestFaultWorkspaceKilledMidRun: `docker kill` of the workspace during a
// run ends the client's stream with workspace_lost, and the next execute
// runs on a new workspace.
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
	for {
		ev, err := rd.Next()
		if err != nil {
			t.Fatalf("stream ended before the run started: %v", err)
		}
		if ev.Event == "stdout" && ev.Data == "started" {
			break
		}
	}
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

// TestFaultSIGTERMWhileDraining: SIGTERM with a request in flight: the
// listener stays open while it lasts, readiness answers 503 and a new
// request 503 shutting_down (never "connection refused"), then the process
// exits 0.
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
