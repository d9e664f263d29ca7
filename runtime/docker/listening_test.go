package docker

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/docker/docker/client"
)

// TestAwaitListening: the wait ends when the agent binds its socket (here
// a real Unix listener created while the wait runs, or before it), and
// with ctx's error when no agent comes; a directory that cannot be watched
// is an error at once (the caller falls back to probing).
func TestAwaitListening(t *testing.T) {
	t.Parallel()
	base, err := os.MkdirTemp("", "wsl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	r, err := New(&client.Client{}, Options{Image: "img", SocketBasePath: base})
	if err != nil {
		t.Fatal(err)
	}
	mkdir := func(t *testing.T, token string) (endpoint, sock string) {
		t.Helper()
		dir := filepath.Join(base, token)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		sock = filepath.Join(dir, agentSocketName)
		return "unix://" + sock, sock
	}
	listen := func(t *testing.T, sock string) {
		t.Helper()
		ln, err := net.Listen("unix", sock)
		if err != nil {
			t.Error(err)
			return
		}
		t.Cleanup(func() { ln.Close() })
	}
	ctxFor := func(t *testing.T, d time.Duration) context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		t.Cleanup(cancel)
		return ctx
	}

	t.Run("socket appears", func(t *testing.T) {
		t.Parallel()
		endpoint, sock := mkdir(t, "tok-appears")
		done := make(chan error, 1)
		go func() { done <- r.AwaitListening(ctxFor(t, time.Minute), endpoint) }()
		listen(t, sock)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
	t.Run("socket already there", func(t *testing.T) {
		t.Parallel()
		endpoint, sock := mkdir(t, "tok-there")
		listen(t, sock)
		if err := r.AwaitListening(ctxFor(t, time.Minute), endpoint); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("no agent", func(t *testing.T) {
		t.Parallel()
		endpoint, _ := mkdir(t, "tok-none")
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.AwaitListening(ctx, endpoint) }()
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
	})
	t.Run("no directory", func(t *testing.T) {
		t.Parallel()
		if err := r.AwaitListening(ctxFor(t, time.Minute), "unix://"+filepath.Join(base, "tok-missing", agentSocketName)); err == nil {
			t.Fatal("want an error for a directory that does not exist")
		}
	})
	t.Run("not an agent socket", func(t *testing.T) {
		t.Parallel()
		if err := r.AwaitListening(ctxFor(t, time.Minute), "unix:///var/run/docker.sock"); err == nil {
			t.Fatal("want an error for a path outside the socket base")
		}
	})
}
