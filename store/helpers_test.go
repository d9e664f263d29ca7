package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/workspaced/workspaced/internal/redistest"
	"github.com/workspaced/workspaced/store"
	"github.com/workspaced/workspaced/store/storetest"
	"github.com/workspaced/workspaced/workspace"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// clock is a settable clock for the store.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.UnixMilli(1_700_000_000_000)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	s      *store.Store
	clock  *clock
	client *redis.Client
}

func (e env) rdb(*testing.T) *redis.Client { return e.client }

func newEnv(t *testing.T) env {
	t.Helper()
	srv := redistest.Start(t)
	storetest.Audit(t, srv, "t:")
	rdb := srv.Client(t)
	c := newClock()
	return env{s: store.New(rdb, store.Options{Prefix: "t:", Now: c.Now}), clock: c, client: rdb}
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// must pairs a result with its error: must(f()).get(t) fails t on error.
func must[T any](v T, err error) result[T] { return result[T]{v, err} }

type result[T any] struct {
	v   T
	err error
}

func (r result[T]) get(t *testing.T) T {
	t.Helper()
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.v
}

func info(wid string) workspace.Info {
	return workspace.Info{ID: wid, Token: "tok-" + wid, Endpoint: "unix:///run/" + wid + "/agent.sock"}
}

// bind claims cid and binds it to wid at generation 0.
func (e env) bind(t *testing.T, cid, wid string) store.Conversation {
	t.Helper()
	ctx := ctxT(t)
	must(e.s.ClaimConversation(ctx, cid, "owner", "tenant")).get(t)
	return must(e.s.BindProvisioning(ctx, store.Binding{Conversation: cid, Workspace: info(wid)})).get(t)
}

// ready binds cid to wid and brings wid to ready through events.
func (e env) ready(t *testing.T, cid, wid string) store.Conversation {
	t.Helper()
	ctx := ctxT(t)
	e.bind(t, cid, wid)
	e.apply(t, wid, workspace.StatusRunning, 1)
	r := must(e.s.MarkReady(ctx, wid, "unix:///ready/"+wid)).get(t)
	if r.Conversation == nil {
		t.Fatalf("MarkReady(%s) made no conversation ready", wid)
	}
	return *r.Conversation
}

func (e env) apply(t *testing.T, wid string, st workspace.Status, v int64) store.ApplyResult {
	t.Helper()
	return must(e.s.ApplyTaskState(ctxT(t), store.TaskState{Workspace: wid, Status: st, Version: v, StoppedReason: "reason"})).get(t)
}

func (e env) conv(t *testing.T, cid string) store.Conversation {
	t.Helper()
	return must(e.s.Conversation(ctxT(t), cid)).get(t)
}

func (e env) ws(t *testing.T, wid string) store.Workspace {
	t.Helper()
	return must(e.s.Workspace(ctxT(t), wid)).get(t)
}
