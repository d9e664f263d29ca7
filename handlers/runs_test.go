package handlers_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/workspaced/workspaced/agent/client"
	"github.com/workspaced/workspaced/events/bus"
	"github.com/workspaced/workspaced/handlers"
	"github.com/workspaced/workspaced/internal/redistest"
	"github.com/workspaced/workspaced/sse"
	"github.com/workspaced/workspaced/store"
	"github.com/workspaced/workspaced/store/storetest"
	"github.com/workspaced/workspaced/workspace"
)

// runEnv is a real agent on a Unix socket, a real redis-server, and API
// replicas sharing both, with the conversation "conv" owned by keyA and
// bound, ready, to the agent.
type runEnv struct {
	t      *testing.T
	dir    string
	st     *store.Store
	keys   *handlers.Keys
	rt     http.RoundTripper
	bus    *bus.Bus
	agents unixTransport
	rdb    *redis.Client // the store's client (a test may hook it before starting replicas)
}

func newRunEnv(t *testing.T) *runEnv {
	t.Helper()
	dir, err := os.MkdirTemp("", "wsruns")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	sock := filepath.Join(dir, "agent.sock")
	startAgent(t, dir, sock)
	rs := redistest.Start(t)
	storetest.Audit(t, rs, "test:")
	rdb := rs.Client(t)
	st := store.New(rdb, store.Options{Prefix: "test:"})
	keys, err := handlers.ParseKeys(keyA+","+keyB, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p, _ := keys.Lookup(secret(keyA))
	endpoint := "unix://" + sock
	bindReady(t, ctx, st, p, "conv", workspace.Info{ID: "ws-1", Token: "c-1", Endpoint: endpoint, Status: workspace.StatusRunning})
	bs, err := bus.New(ctx, bus.Options{Kind: bus.KindGoChannel, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bs.Close() })
	rt := client.UnixTransport(sock)
	t.Cleanup(closeIdle(rt))
	return &runEnv{t: t, dir: dir, st: st, keys: keys, rt: rt, bus: bs, agents: unixTransport{rt}, rdb: rdb}
}

// replica is one API server of a runEnv with its sweep loop.
type replica struct {
	srv  *handlers.Server
	http *httptest.Server
	stop context.CancelFunc
}

func (e *runEnv) replica(mod func(*handlers.Options)) *replica {
	t := e.t
	opts := handlers.Options{Store: apiStore{e.st}, Commands: e.bus.Commands(), Transports: e.agents, Keys: e.keys,
		Heartbeat: 200 * time.Millisecond, RunLeaseTTL: 600 * time.Millisecond, RetryHint: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if mod != nil {
		mod(&opts)
	}
	srv, err := handlers.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	loop := make(chan struct{})
	go func() { defer close(loop); _ = srv.Run(ctx) }()
	hs := httptest.NewServer(srv.Handler())
	r := &replica{srv: srv, http: hs, stop: cancel}
	var once sync.Once
	t.Cleanup(func() {
		once.Do(func() {
			cancel()
			<-loop
			hs.CloseClientConnections()
			hs.Close()
			stopServer(t, srv)
		})
	})
	return r
}

// testLog sends log lines to t.Log while the test runs.
type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (r *replica) request(t *testing.T, ctx context.Context, method, path, body string, hdr map[string]string) *http.Response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.http.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+secret(keyA))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := r.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// execute starts a run and returns its id and open stream.
func (r *replica) execute(t *testing.T, ctx context.Context, body string) (string, *sse.Reader) {
	t.Helper()
	resp := r.request(t, ctx, http.MethodPost, "/v1/conversations/conv/execute", body, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("execute: %s", resp.Status)
	}
	return resp.Header.Get(handlers.RunIDHeader), sse.NewReader(resp.Body)
}

// follow opens GET .../runs/{rid}/events after id after.
func (r *replica) follow(t *testing.T, ctx context.Context, rid string, after string) *sse.Reader {
	t.Helper()
	resp := r.request(t, ctx, http.MethodGet, "/v1/conversations/conv/runs/"+rid+"/events", "", map[string]string{"Last-Event-ID": after})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("follow: %s", resp.Status)
	}
	return sse.NewReader(resp.Body)
}

// readUntil reads events until one satisfies stop (included) or the
// stream ends.
func readUntil(t *testing.T, rd *sse.Reader, stop func(sse.Event) bool) ([]sse.Event, error) {
	t.Helper()
	var evs []sse.Event
	for {
		ev, err := rd.Next()
		if err != nil {
			return evs, err
		}
		evs = append(evs, ev)
		if stop(ev) {
			return evs, nil
		}
	}
}

func isFinalEvent(ev sse.Event) bool { return ev.Event == "done" || ev.Event == "error" }

// countingRun prints n numbered lines, one every 20ms, then exits 0.
func countingRun(n int) string {
	return fmt.Sprintf(`{"kind":"command","argv":["sh","-c","i=1; while [ $i -le %d ]; do echo line-$i; i=$((i+1)); sleep 0.02; done"]}`, n)
}

// checkRun asserts evs is a whole run: ids 1, 2, 3, ... each once, the
// run event first, lines 1..n in order, the final done last.
func checkRun(t *testing.T, evs []sse.Event, n int) {
	t.Helper()
	line := 0
	for i, ev := range evs {
		if ev.ID != strconv.Itoa(i+1) {
			t.Fatalf("event %d has id %q, want %d (a gap or a duplicate): %+v", i, ev.ID, i+1, evs)
		}
		if ev.Event == "stdout" {
			line++
			if ev.Data != fmt.Sprintf("line-%d", line) {
				t.Fatalf("event %d = %q, want line-%d", i, ev.Data, line)
			}
		}
	}
	if len(evs) == 0 || evs[0].Event != "run" {
		t.Fatalf("first event is not run: %+v", evs)
	}
	if line != n {
		t.Fatalf("got %d lines, want %d", line, n)
	}
	if last := evs[len(evs)-1]; last.Event != "done" || !strings.Contains(last.Data, `"exit_code":0`) {
		t.Fatalf("last event %+v, want done with exit code 0", last)
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// The client drops mid-run and reconnects with Last-Event-ID: every event
// exactly once, in order, the final one included; the run went on.
func TestRunReconnectWithLastEventID(t *testing.T) {
	e := newRunEnv(t)
	r := e.replica(nil)
	ctx := testCtx(t)
	reqCtx, drop := context.WithCancel(ctx)
	rid, rd := r.execute(t, reqCtx, countingRun(40))
	first, err := readUntil(t, rd, func(ev sse.Event) bool { return ev.Data == "line-10" })
	if err != nil {
		t.Fatalf("before the drop: %v", err)
	}
	drop()
	rest, err := readUntil(t, r.follow(t, ctx, rid, first[len(first)-1].ID), isFinalEvent)
	if err != nil {
		t.Fatalf("after reconnecting: %v", err)
	}
	checkRun(t, append(first, rest...), 40)
	// ?after= for clients that cannot set the header; the whole run again.
	resp := r.request(t, ctx, http.MethodGet, "/v1/conversations/conv/runs/"+rid+"/events?after=0", "", nil)
	all, err := readUntil(t, sse.NewReader(resp.Body), isFinalEvent)
	if err != nil {
		t.Fatal(err)
	}
	checkRun(t, all, 40)
	// The run is listed, done.
	var list struct {
		Runs []struct {
			RunID    string `json:"run_id"`
			State    string `json:"state"`
			ExitCode *int   `json:"exit_code"`
		} `json:"runs"`
	}
	resp = r.request(t, ctx, http.MethodGet, "/v1/conversations/conv/runs", "", nil)
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || len(list.Runs) != 1 || list.Runs[0].RunID != rid ||
		list.Runs[0].State != "done" || list.Runs[0].ExitCode == nil || *list.Runs[0].ExitCode != 0 {
		t.Fatalf("runs = %+v, %v", list, err)
	}
}

// Three followers at once, joining at different points: each gets every
// event once, in order.
func TestRunThreeFollowers(t *testing.T) {
	e := newRunEnv(t)
	r := e.replica(nil)
	ctx := testCtx(t)
	rid, rd := r.execute(t, ctx, countingRun(30))
	head, err := readUntil(t, rd, func(ev sse.Event) bool { return ev.Data == "line-5" })
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	got := make([][]sse.Event, 3)
	errs := make([]error, 3)
	for i, after := range []string{"", "2", head[len(head)-1].ID} {
		fr := r.follow(t, ctx, rid, after)
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = readUntil(t, fr, isFinalEvent)
		}()
	}
	tail, err := readUntil(t, rd, isFinalEvent)
	if err != nil {
		t.Fatal(err)
	}
	checkRun(t, append(head, tail...), 30)
	wg.Wait()
	n, _ := strconv.Atoi(head[len(head)-1].ID)
	for i, skip := range []int{0, 2, n} {
		if errs[i] != nil {
			t.Fatalf("follower %d: %v", i, errs[i])
		}
		checkRun(t, append(append([]sse.Event{}, head[:skip]...), got[i]...), 30)
	}
}

// A follower asking for an event trimmed from the capped log gets the
// final error run_log_trimmed (no id), not a silent gap.
func TestRunTrimmedLog(t *testing.T) {
	e := newRunEnv(t)
	r := e.replica(func(o *handlers.Options) { o.RunLogMaxEvents = 5 })
	ctx := testCtx(t)
	rid, rd := r.execute(t, ctx, countingRun(20))
	if _, err := readUntil(t, rd, isFinalEvent); err != nil {
		t.Fatal(err)
	}
	evs, err := readUntil(t, r.follow(t, ctx, rid, "3"), isFinalEvent)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Event != "error" || evs[0].ID != "" || !strings.Contains(evs[0].Data, `"run_log_trimmed"`) {
		t.Fatalf("events %+v, want one final error run_log_trimmed without id", evs)
	}
	// The newest five (18..22: run, 20 lines, done) are there.
	evs, err = readUntil(t, r.follow(t, ctx, rid, "19"), isFinalEvent)
	if err != nil || len(evs) != 3 || evs[2].Event != "done" {
		t.Fatalf("events after 19: %+v, %v", evs, err)
	}
}

// A run whose client left is cancelled after RUN_DETACHED_TTL with no
// follower; with on_disconnect "cancel", at once.
func TestRunDetachedTTLCancels(t *testing.T) {
	e := newRunEnv(t)
	r := e.replica(func(o *handlers.Options) { o.RunDetachedTTL = time.Second })
	ctx := testCtx(t)
	for _, tt := range []struct{ name, extra string }{{"detached ttl", ""}, {"on_disconnect cancel", `,"on_disconnect":"cancel"`}} {
		reqCtx, drop := context.WithCancel(ctx)
		rid, rd := r.execute(t, reqCtx, `{"kind":"command","argv":["sh","-c","echo started; sleep 300"]`+tt.extra+`}`)
		if _, err := readUntil(t, rd, func(ev sse.Event) bool { return ev.Data == "started" }); err != nil {
			t.Fatal(err)
		}
		drop()
		run := e.waitRunEnded(ctx, rid)
		if run.State != store.RunDone || run.ExitCode != -1 {
			t.Fatalf("%s: run %+v, want ended by a signal", tt.name, run)
		}
		evs, err := readUntil(t, r.follow(t, ctx, rid, ""), isFinalEvent)
		if err != nil || !strings.Contains(evs[len(evs)-1].Data, `"reason":"cancelled"`) {
			t.Fatalf("%s: final event %+v, %v; want done, cancelled", tt.name, evs, err)
		}
	}
}

// POST .../cancel ends a run; its followers get the final event.
func TestRunCancelEndpoint(t *testing.T) {
	e := newRunEnv(t)
	r := e.replica(nil)
	ctx := testCtx(t)
	rid, rd := r.execute(t, ctx, `{"kind":"command","argv":["sh","-c","echo started; sleep 300"]}`)
	if _, err := readUntil(t, rd, func(ev sse.Event) bool { return ev.Data == "started" }); err != nil {
		t.Fatal(err)
	}
	if resp := r.request(t, ctx, http.MethodPost, "/v1/conversations/conv/runs/"+rid+"/cancel", "", nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("cancel: %s", resp.Status)
	}
	evs, err := readUntil(t, rd, isFinalEvent)
	if err != nil || !strings.Contains(evs[len(evs)-1].Data, `"reason":"cancelled"`) {
		t.Fatalf("final event %+v, %v", evs, err)
	}
	tests := []struct {
		name, method, path, key string
		want                    int
	}{
		{"unknown run", http.MethodGet, "/v1/conversations/conv/runs/nope/events", secret(keyA), 404},
		{"bad run id", http.MethodGet, "/v1/conversations/conv/runs/-x/events", secret(keyA), 400},
		{"other key", http.MethodGet, "/v1/conversations/conv/runs/" + rid + "/events", secret(keyB), 404},
		{"other key cancels", http.MethodPost, "/v1/conversations/conv/runs/" + rid + "/cancel", secret(keyB), 404},
		{"run of another conversation", http.MethodGet, "/v1/conversations/conv2/runs/" + rid, secret(keyA), 404},
		{"no key", http.MethodGet, "/v1/conversations/conv/runs", "", 401},
	}
	for _, tt := range tests {
		req, _ := http.NewRequestWithContext(ctx, tt.method, r.http.URL+tt.path, nil)
		if tt.key != "" {
			req.Header.Set("Authorization", "Bearer "+tt.key)
		}
		resp, err := r.http.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Error struct{ Code string } }
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != tt.want || body.Error.Code == "" {
			t.Errorf("%s: %d %+v, want %d with a JSON error", tt.name, resp.StatusCode, body, tt.want)
		}
	}
	for _, bad := range []string{"-1", "01", "x", "99999999999999999999"} {
		resp := r.request(t, ctx, http.MethodGet, "/v1/conversations/conv/runs/"+rid+"/events", "", map[string]string{"Last-Event-ID": bad})
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("Last-Event-ID %q: %s, want 400", bad, resp.Status)
		}
	}
}

// A draining replica hands its run over: its client stream ends with a
// retry hint and no final event; the client follows the run on the other
// replica, which takes the relay over from the agent's log: every event
// once, the run's process untouched.
func TestRunHandoffToAnotherReplica(t *testing.T) {
	e := newRunEnv(t)
	a := e.replica(nil)
	b := e.replica(nil)
	ctx := testCtx(t)
	pidfile := filepath.Join(e.dir, "pid")
	rid, rd := a.execute(t, ctx, fmt.Sprintf(`{"kind":"command","argv":["sh","-c","echo $$ > %s; i=1; while [ $i -le 60 ]; do echo line-$i; i=$((i+1)); sleep 0.02; done"]}`, pidfile))
	head, err := readUntil(t, rd, func(ev sse.Event) bool { return ev.Data == "line-5" })
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := os.ReadFile(pidfile)
	a.srv.Drain()
	more, err := readUntil(t, rd, isFinalEvent)
	if !errors.Is(err, io.EOF) {
		t.Fatalf("the handed-off stream went on to a final event: %+v", more)
	}
	head = append(head, more...)
	rest, err := readUntil(t, b.follow(t, ctx, rid, head[len(head)-1].ID), isFinalEvent)
	if err != nil {
		t.Fatal(err)
	}
	checkRun(t, append(head, rest...), 60)
	if again, _ := os.ReadFile(pidfile); string(again) != string(pid) {
		t.Errorf("the run's process was restarted: pid %q then %q", pid, again)
	}
}

func (e *runEnv) waitRunEnded(ctx context.Context, rid string) store.Run {
	e.t.Helper()
	for {
		r, err := e.st.GetRun(ctx, rid)
		if err == nil && !r.Active() {
			return r
		}
		select {
		case <-ctx.Done():
			e.t.Fatalf("run %s did not end: %+v, %v", rid, r, err)
		case <-time.After(50 * time.Millisecond): // the run's end has no notification
		}
	}
}

// bindReady claims conversation cid for principal p and binds it, ready,
// to the running workspace info, as a provisioning would.
func bindReady(tb testing.TB, ctx context.Context, st *store.Store, p handlers.Principal, cid string, info workspace.Info) {
	tb.Helper()
	if _, err := st.ClaimConversation(ctx, cid, p.Owner, p.Tenant); err != nil {
		tb.Fatal(err)
	}
	if _, err := st.BindProvisioning(ctx, store.Binding{Conversation: cid, Workspace: info}); err != nil {
		tb.Fatal(err)
	}
	if _, err := st.ApplyTaskState(ctx, store.TaskState{Workspace: info.ID, Status: workspace.StatusRunning, Version: 1}); err != nil {
		tb.Fatal(err)
	}
	if _, err := st.MarkReady(ctx, info.ID, info.Endpoint); err != nil {
		tb.Fatal(err)
	}
}
