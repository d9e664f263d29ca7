package main

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/workspaced/workspaced/sse"
	"github.com/workspaced/workspaced/store"
)

// follow opens GET .../runs/{rid}/events after id after.
func (s *stack) follow(ctx context.Context, conv, rid, after string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/v1/conversations/"+conv+"/runs/"+rid+"/events", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("Last-Event-ID", after)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, errors.New(resp.Status)
	}
	return resp, nil
}

// wholeRun checks evs is a run from its first event: ids 1, 2, ... once
// each, lines line-1..line-n in order, a final done with exit code 0.
func wholeRun(t *testing.T, evs []sse.Event, n int) {
	t.Helper()
	line := 0
	for i, ev := range evs {
		if ev.ID != strconv.Itoa(i+1) {
			t.Fatalf("event %d has id %q: a gap or a duplicate in %v", i, ev.ID, names(evs))
		}
		if ev.Event == "stdout" {
			line++
			if ev.Data != "line-"+strconv.Itoa(line) {
				t.Fatalf("event %d = %q, want line-%d", i, ev.Data, line)
			}
		}
	}
	if f := final(evs); line != n || f.Event != "done" || !strings.Contains(f.Data, `"exit_code":0`) || evs[0].Event != "run" {
		t.Fatalf("%d lines (want %d), first %+v, final %+v", line, n, evs[0], f)
	}
}

// Runs on the Docker runtime: a client drops mid-run and reconnects with
// Last-Event-ID, three followers at once, a trimmed log, and a run whose
// client never comes back, cancelled after RUN_DETACHED_TTL with its
// process group gone.
func TestRunsEndToEnd(t *testing.T) {
	t.Parallel()
	s := startStack(t, map[string]string{"RUN_DETACHED_TTL": "3s", "RUN_LOG_MAX_EVENTS": "40"})
	ctx := ctxFor(t, 3*time.Minute)
	counting := `{"kind":"command","argv":["sh","-c","i=1; while [ $i -le 30 ]; do echo line-$i; i=$((i+1)); sleep 0.05; done"]}`

	t.Run("reconnect and three followers", func(t *testing.T) {
		reqCtx, drop := context.WithCancel(ctx)
		resp, err := s.post(reqCtx, "conv-runs", counting)
		if err != nil {
			t.Fatal(err)
		}
		rid := resp.Header.Get("Workspaced-Run-Id")
		rd := sse.NewReader(resp.Body)
		var head []sse.Event
		for len(head) == 0 || head[len(head)-1].Data != "line-10" {
			ev, err := rd.Next()
			if err != nil {
				t.Fatalf("before the drop: %v", err)
			}
			head = append(head, ev)
		}
		drop()
		resp.Body.Close()
		var wg sync.WaitGroup
		results := make([][]sse.Event, 3)
		errs := make([]error, 3)
		afters := []string{head[len(head)-1].ID, "", "3"}
		for i, after := range afters {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := s.follow(ctx, "conv-runs", rid, after)
				if err != nil {
					errs[i] = err
					return
				}
				defer r.Body.Close()
				results[i], errs[i] = collect(r.Body)
			}()
		}
		wg.Wait()
		for i, after := range afters {
			if errs[i] != nil {
				t.Fatalf("follower %d: %v", i, errs[i])
			}
			skip, _ := strconv.Atoi(after)
			wholeRun(t, append(append([]sse.Event{}, head[:skip]...), results[i]...), 30)
		}
	})

	t.Run("trimmed log", func(t *testing.T) {
		evs, err := s.exec(ctx, "conv-runs", strings.Replace(counting, "30", "60", 1))
		if err != nil {
			t.Fatal(err)
		}
		rid := ""
		if len(evs) > 0 && evs[0].Event == "run" {
			rid = strings.Split(strings.Split(evs[0].Data, `"run_id":"`)[1], `"`)[0]
		}
		r, err := s.follow(ctx, "conv-runs", rid, "2")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		got, err := collect(r.Body)
		if err != nil || len(got) != 1 || got[0].Event != "error" || got[0].ID != "" || !strings.Contains(got[0].Data, `"run_log_trimmed"`) {
			t.Fatalf("follow after 2 of 60+ events with a cap of 40: %+v, %v; want one final run_log_trimmed error", got, err)
		}
	})

	t.Run("detached ttl", func(t *testing.T) {
		reqCtx, drop := context.WithCancel(ctx)
		resp, err := s.post(reqCtx, "conv-runs", `{"kind":"command","argv":["sh","-c","sleep 600 & echo started; wait"]}`)
		if err != nil {
			t.Fatal(err)
		}
		rid := resp.Header.Get("Workspaced-Run-Id")
		rd := sse.NewReader(resp.Body)
		for {
			ev, err := rd.Next()
			if err != nil {
				t.Fatalf("before the drop: %v", err)
			}
			if ev.Data == "started" {
				break
			}
		}
		conv := s.waitConversation("conv-runs", func(c store.Conversation) bool { return c.Workspace != "" })
		if !sleeping(t, s, conv.Workspace) {
			t.Fatal("no sleep process in the workspace while the run goes on")
		}
		drop()
		resp.Body.Close()
		// Nobody follows: the run is cancelled after RUN_DETACHED_TTL.
		deadline := time.Now().Add(60 * time.Second)
		for {
			run, err := s.store.GetRun(ctx, rid)
			if err == nil && !run.Active() {
				if run.ExitCode != -1 {
					t.Fatalf("run %+v, want ended by a signal", run)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("run %s not cancelled: %+v, %v", rid, run, err)
			}
			time.Sleep(200 * time.Millisecond) // the run's end has no notification to wait on
		}
		if sleeping(t, s, conv.Workspace) {
			t.Fatal("the run's process group outlived its cancellation")
		}
		r, err := s.follow(ctx, "conv-runs", rid, "")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		evs, err := collect(r.Body)
		if err != nil || !strings.Contains(final(evs).Data, `"reason":"cancelled"`) {
			t.Fatalf("final event %+v, %v; want done, cancelled", final(evs), err)
		}
	})
}

// sleeping reports whether a sleep process runs in workspace wid.
func sleeping(t *testing.T, s *stack, wid string) bool {
	t.Helper()
	top, err := s.docker.ContainerTop(context.Background(), wid, nil)
	if err != nil {
		t.Fatalf("docker top: %v", err)
	}
	for _, p := range top.Processes {
		if strings.Contains(strings.Join(p, " "), "sleep 600") {
			return true
		}
	}
	return false
}
