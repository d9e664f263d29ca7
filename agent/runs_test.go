package agent_test

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"github.com/workspaced/workspaced/agent"
	"github.com/workspaced/workspaced/agent/api"
	"github.com/workspaced/workspaced/agent/client"
	"github.com/workspaced/workspaced/sse"
)

// A named run outlives its request: the client goes away mid-run, a
// second reader resumes after the last id the first one saw and gets the
// rest, each event once, up to the final one.
func TestNamedRunSurvivesDisconnectAndResumes(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, nil)
	ctx, cancel := context.WithCancel(testContext(t))
	st, err := ta.client.ExecuteRun(ctx, "run-1", api.ExecuteRequest{Kind: api.KindCommand,
		Argv: []string{"sh", "-c", "echo one; echo two; read x < /dev/null; sleep 1; echo three; echo four"}})
	if err != nil {
		t.Fatal(err)
	}
	seen := waitFor(t, st, func(ev sse.Event) bool { return ev.Data == "two" })
	cancel() // the client goes away
	_ = st.Close()
	last, _ := api.ParseEventID(seen[len(seen)-1].ID)

	rest, err := ta.client.Events(testContext(t), "run-1", last)
	if err != nil {
		t.Fatal(err)
	}
	evs := collect(t, rest)
	all := append(seen, evs...)
	var out []string
	for i, ev := range all {
		if ev.ID != strconv.Itoa(i+1) {
			t.Fatalf("event %d has id %q: ids are not 1, 2, 3, ... (%+v)", i, ev.ID, all)
		}
		if ev.Event == api.EventStdout {
			out = append(out, ev.Data)
		}
	}
	if d := doneOf(t, all); d.ExitCode != 0 || d.Reason != "" {
		t.Errorf("done = %+v, want a run that ended by itself", d)
	}
	if want := []string{"one", "two", "three", "four"}; !equal(out, want) {
		t.Errorf("stdout %q, want %q", out, want)
	}
	// Asking again from the start replays everything.
	again, err := ta.client.Events(testContext(t), "run-1", 0)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(collect(t, again)); n != len(all) {
		t.Errorf("replay from 0 gave %d events, want %d", n, len(all))
	}
}

func TestRunCancelKillsProcessGroup(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, nil)
	prompt, pidfile := sleepPrompt(t)
	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	st, err := ta.client.ExecuteRun(ctx, "run-c", api.ExecuteRequest{Prompt: prompt})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, st, isSleeping)
	pids := readPIDs(t, pidfile)
	_ = st.Close()
	if h, _ := ta.client.Health(testContext(t)); !h.Busy {
		t.Fatal("a named run ended when its client went away")
	}
	if err := ta.client.Cancel(testContext(t), "run-c"); err != nil {
		t.Fatal(err)
	}
	rest, err := ta.client.Events(testContext(t), "run-c", 0)
	if err != nil {
		t.Fatal(err)
	}
	if d := doneOf(t, collect(t, rest)); d.Reason != "cancelled" {
		t.Errorf("done = %+v, want reason cancelled", d)
	}
	waitIdle(t, ta)
	assertGone(t, pids)
}

func TestRunEventsErrors(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, func(o *agent.Options) { o.RunLogBytes = 64 })
	st, err := ta.client.ExecuteRun(testContext(t), "run-t", api.ExecuteRequest{Kind: api.KindCommand,
		Argv: []string{"sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do echo line-$i; done"}})
	if err != nil {
		t.Fatal(err)
	}
	collect(t, st)
	tests := []struct {
		name  string
		run   string
		after int64
		want  error
	}{
		{"trimmed", "run-t", 1, client.ErrTrimmed},
		{"unknown run", "run-x", 0, client.ErrNoRun},
	}
	for _, tt := range tests {
		if _, err := ta.client.Events(testContext(t), tt.run, tt.after); !errors.Is(err, tt.want) {
			t.Errorf("%s: Events error %v, want %v", tt.name, err, tt.want)
		}
	}
	for _, path := range []string{"/runs/run-t/events?after=-1", "/runs/run-t/events?after=01", "/runs/run-t/events?after=999", "/runs/bad%20id/events"} {
		if status, _ := doRaw(t, ta, "GET", path, nil); status != 400 {
			t.Errorf("GET %s = %d, want 400", path, status)
		}
	}
	if err := ta.client.Cancel(testContext(t), "run-x"); !errors.Is(err, client.ErrNoRun) {
		t.Errorf("Cancel of an unknown run: %v, want ErrNoRun", err)
	}
	// The newest events are still there.
	rest, err := ta.client.Events(testContext(t), "run-t", 20)
	if err != nil {
		t.Fatal(err)
	}
	if evs := collect(t, rest); len(evs) != 1 || evs[0].Event != api.EventDone {
		t.Errorf("events after 20: %+v, want the final event", evs)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
