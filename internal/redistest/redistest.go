// Package redistest starts a real redis-server for a test: a private process
// listening on a Unix socket in the test's temporary directory, so tests run
// in parallel without port races and leave nothing behind.
package redistest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/workspaced/workspaced/internal/testenv"
)

// Server is a running redis-server owned by one test.
type Server struct {
	// Socket is the Unix socket path the server listens on.
	Socket string
	// URL is a go-redis URL for Socket ("unix:///...").
	URL string
}

// Start launches redis-server (persistence off) and stops it at cleanup. A
// missing redis-server binary is testenv.Unavailable.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := testenv.LookPath(t, "redis-server")
	dir, err := os.MkdirTemp("", "redistest-")
	if err != nil {
		t.Fatalf("create redis dir: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	sock := filepath.Join(dir, "redis.sock")
	cmd := exec.Command(bin,
		"--port", "0",
		"--unixsocket", sock,
		"--unixsocketperm", "700",
		"--dir", dir,
		"--save", "",
		"--appendonly", "no",
		"--loglevel", "warning",
	)
	logf, err := os.Create(filepath.Join(dir, "redis.log"))
	if err != nil {
		t.Fatalf("create redis log: %v", err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		testenv.Unavailable(t, "redis-server", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			if b, err := os.ReadFile(logf.Name()); err == nil && len(b) > 0 {
				t.Logf("redis-server log:\n%s", b)
			}
		}
	})
	s := &Server{Socket: sock, URL: "unix://" + sock}
	waitReady(t, s)
	return s
}

// Client returns a go-redis client for s, closed at cleanup.
func (s *Server) Client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Network: "unix", Addr: s.Socket})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// NewClient starts a server and returns a client for it: the common case.
func NewClient(t testing.TB) *redis.Client {
	t.Helper()
	return Start(t).Client(t)
}

func waitReady(t testing.TB, s *Server) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Network: "unix", Addr: s.Socket, MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var last error
	for ctx.Err() == nil {
		if last = c.Ping(ctx).Err(); last == nil {
			return
		}
		select { // the server is a child process: there is no event to wait on
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("redis-server did not become ready: %v", fmt.Errorf("ping %s: %w", s.Socket, last))
}
