package agent_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/workspaced/workspaced/agent/api"

	"github.com/workspaced/workspaced/agent"
	"github.com/workspaced/workspaced/agent/client"
	"github.com/workspaced/workspaced/sse"
)

// sleepPrompt makes fakeclaude start a sleeping child, record both PIDs in
// a file and sleep (far longer than any test).
func sleepPrompt(t *testing.T) (prompt, pidfile string) {
	pidfile = filepath.Join(t.TempDir(), "pids")
	return "sleep:10m pidfile:" + pidfile, pidfile
}

func TestDisconnectKillsProcessGroup(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, nil)
	prompt, pidfile := sleepPrompt(t)
	ctx, cancel := context.WithCancel(testContext(t))
	st, err := ta.client.Execute(ctx, api.ExecuteRequest{Prompt: prompt})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, st, isSleeping)
	pids := readPIDs(t, pidfile)
	cancel() // the client goes away
	_ = st.Close()
	waitIdle(t, ta)
	assertGone(t, pids)
}

func TestTimeoutKillsProcessGroup(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, nil)
	prompt, pidfile := sleepPrompt(t)
	st, err := ta.client.Execute(testContext(t), api.ExecuteRequest{Prompt: prompt, TimeoutS: 1})
	if err != nil {
		t.Fatal(err)
	}
	evs := collect(t, st)
	d := doneOf(t, evs)
	if d.Reason != "timeout" || d.ExitCode != -1 || d.Signal != "SIGTERM" {
		t.Errorf("done = %+v, want killed by SIGTERM on timeout", d)
	}
	waitIdle(t, ta)
	assertGone(t, readPIDs(t, pidfile))
}

func TestKillEscalatesToSIGKILL(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, func(o *agent.Options) { o.KillGrace = 200e6 })
	// The shell ignores SIGTERM and so does its sleeping child.
	st, err := ta.client.Execute(testContext(t), api.ExecuteRequest{
		Kind:     api.KindCommand,
		Argv:     []string{"sh", "-c", `trap '' TERM; sleep 600 & echo "$$ $!"; wait`},
		TimeoutS: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	evs := collect(t, st)
	d := doneOf(t, evs)
	if d.Reason != "timeout" || d.Signal != "SIGKILL" {
		t.Errorf("done = %+v, want SIGKILL after the grace period", d)
	}
	if evs[0].Event != api.EventStdout {
		t.Fatalf("first event %+v, want the PIDs", evs[0])
	}
	assertGone(t, parsePIDs(t, evs[0].Data))
}

func TestSecondExecuteIsBusy(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, nil)
	prompt, pidfile := sleepPrompt(t)
	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	st, err := ta.client.Execute(ctx, api.ExecuteRequest{Prompt: prompt})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	waitFor(t, st, isSleeping)
	if h, err := ta.client.Health(testContext(t)); err != nil || !h.Busy {
		t.Errorf("Health = %+v, %v; want busy", h, err)
	}
	_, err = ta.client.Execute(testContext(t), api.ExecuteRequest{Prompt: "second"})
	if !errors.Is(err, client.ErrBusy) {
		t.Fatalf("second Execute error = %v, want api.ErrBusy", err)
	}
	status, body := postRaw(t, ta, "/execute", `{"prompt":"third"}`)
	if status != 409 || body == "" {
		t.Fatalf("raw second execute = %d %q, want 409 with a JSON error", status, body)
	}
	cancel()
	waitIdle(t, ta)
	assertGone(t, readPIDs(t, pidfile))
}

func TestStalledClientIsDropped(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, func(o *agent.Options) { o.WriteTimeout = 300e6 })
	c, err := net.Dial("unix", ta.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := `{"prompt":"bigline:50000000"}`
	// Send the request, then never read: the agent's writes block.
	if _, err := fmt.Fprintf(c, "POST /execute HTTP/1.1\r\nHost: agent\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body); err != nil {
		t.Fatal(err)
	}
	// The status line proves the run started (the slot is taken).
	line, err := bufio.NewReaderSize(c, 16).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
		t.Fatalf("status line %q, %v", line, err)
	}
	waitIdle(t, ta)
	if h, err := ta.client.Health(testContext(t)); err != nil || h.Busy {
		t.Fatalf("Health = %+v, %v; want idle", h, err)
	}
}

// A client that has read "done" may start its next run at once: the slot
// is free before the final event is written (a relay that ends its
// response at "done" must not see 409 on the next request).
func TestSlotFreeWhenDoneIsRead(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, nil)
	for i := range 20 {
		st, err := ta.client.Execute(testContext(t), api.ExecuteRequest{Kind: api.KindCommand, Argv: []string{"true"}})
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		waitFor(t, st, func(ev sse.Event) bool { return ev.Event == api.EventDone })
		if ta.srv.Busy() {
			t.Fatalf("run %d: agent busy after its final event", i)
		}
		_ = st.Close()
	}
}
