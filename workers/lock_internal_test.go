package workers

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/workspaced/workspaced/internal/redistest"
	"github.com/workspaced/workspaced/store"
	"github.com/workspaced/workspaced/store/storetest"
)

// A provisioning lock belongs to a live owner: it outlives its TTL while
// the owner renews it, another attempt is refused meanwhile, it is free at
// once after release, and a lock whose owner stopped renewing (a crashed
// process) is free again after the TTL. The TTL is short (real Redis,
// real clock), so these waits are bounded by a few TTLs.
func TestConvLockLiveOwner(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	storetest.Audit(t, rs, "locktest:")
	st := store.New(rs.Client(t), store.Options{Prefix: "locktest:"})
	const ttl = 300 * time.Millisecond
	l := convLock{st: st, ttl: ttl, log: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	hctx, release, ok, err := l.tryHold(ctx, "c1")
	if err != nil || !ok {
		t.Fatalf("first hold: ok %v err %v", ok, err)
	}
	// Held well past its TTL by renewals: a second attempt is refused
	// every time it asks.
	deadline := time.Now().Add(4 * ttl)
	for time.Now().Before(deadline) {
		if _, _, ok, err := l.tryHold(ctx, "c1"); err != nil || ok {
			t.Fatalf("second hold while the owner renews: ok %v err %v", ok, err)
		}
		select {
		case <-hctx.Done():
			t.Fatalf("held context ended: %v", context.Cause(hctx))
		case <-time.After(ttl / 4):
		}
	}
	release()
	_, release2, ok, err := l.tryHold(ctx, "c1")
	if err != nil || !ok {
		t.Fatalf("hold after release: ok %v err %v", ok, err)
	}
	release2()

	// An owner that died: the lock is taken and never renewed nor
	// released. It is refused until the TTL passes, then taken over.
	if ok, err := st.AcquireProvisionLock(ctx, "c2", "dead-owner", ttl); err != nil || !ok {
		t.Fatalf("dead owner's lock: ok %v err %v", ok, err)
	}
	if _, _, ok, _ := l.tryHold(ctx, "c2"); ok {
		t.Fatal("took a lock its owner holds")
	}
	for {
		_, rel, ok, err := l.tryHold(ctx, "c2")
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			rel()
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the dead owner's lock never lapsed")
		case <-time.After(ttl / 4):
		}
	}

	// A holder whose lock is taken from it (it stalled past the TTL and
	// another owner took over) sees its context end with errLockLost.
	hctx, release, ok, err = l.tryHold(ctx, "c3")
	if err != nil || !ok {
		t.Fatalf("hold c3: ok %v err %v", ok, err)
	}
	defer release()
	if _, err := rs.Client(t).Del(ctx, "locktest:lock:provision:c3").Result(); err != nil {
		t.Fatal(err)
	}
	if ok, err := st.AcquireProvisionLock(ctx, "c3", "thief", time.Minute); err != nil || !ok {
		t.Fatalf("take over c3: ok %v err %v", ok, err)
	}
	select {
	case <-hctx.Done():
		if !errors.Is(context.Cause(hctx), errLockLost) {
			t.Fatalf("cause %v, want errLockLost", context.Cause(hctx))
		}
	case <-ctx.Done():
		t.Fatal("the holder never noticed its lock was taken")
	}
}
