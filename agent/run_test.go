package agent_test

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/workspaced/workspaced/agent/api"

	"github.com/workspaced/workspaced/agent"
	"github.com/workspaced/workspaced/agent/client"
)

// listenHandler logs through to the test and reports the address of the
// "listening" record.
type listenHandler struct {
	slog.Handler
	addr chan string
}

func (h listenHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "listening" {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "addr" {
				h.addr <- a.Value.String()
			}
			return true
		})
	}
	return h.Handler.Handle(ctx, r)
}

func (h listenHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return listenHandler{h.Handler.WithAttrs(as), h.addr}
}

func (h listenHandler) WithGroup(n string) slog.Handler {
	return listenHandler{h.Handler.WithGroup(n), h.addr}
}

// startRun runs Server.Run and returns the listening address and a
// channel with Run's result.
func startRun(t *testing.T, ctx context.Context, opts agent.Options) (string, <-chan error) {
	t.Helper()
	addr := make(chan string, 1)
	opts.Logger = slog.New(listenHandler{testLogger(t).Handler(), addr})
	srv, err := agent.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	select {
	case a := <-addr:
		return a, done
	case err := <-done:
		t.Fatalf("Run returned before listening: %v", err)
	case <-testContext(t).Done():
		t.Fatal("Run never listened")
	}
	return "", nil
}

func TestRunShutsDownOnCancel(t *testing.T) {
	t.Parallel()
	dir := shortTempDir(t)
	sock := filepath.Join(dir, "agent.sock")
	proxy := startFakeProxy(t)
	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	_, done := startRun(t, ctx, agent.Options{
		WorkDir: t.TempDir(), ClaudePath: fakeClaude(t), TempDir: t.TempDir(),
		SocketPath: sock, ProxySocket: proxy.path, ProxyListen: "127.0.0.1:0",
		KillGrace: 2e9, Subreaper: true,
	})
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&fs.ModeSocket == 0 || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode = %v, want a socket with 0660", fi.Mode())
	}
	rt := client.UnixTransport(sock)
	defer rt.(interface{ CloseIdleConnections() }).CloseIdleConnections()
	c := client.New(rt)
	prompt, pidfile := sleepPrompt(t)
	st, err := c.Execute(testContext(t), api.ExecuteRequest{Prompt: prompt})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, st, isSleeping)
	pids := readPIDs(t, pidfile)

	cancel()
	evs := collect(t, st) // the run still ends with its done event
	if d := doneOf(t, evs); d.Reason != "shutdown" {
		t.Errorf("done = %+v, want reason shutdown", d)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	assertGone(t, pids)
	if _, err := os.Stat(sock); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket left behind: %v", err)
	}
}

func TestRunTCP(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	addr, done := startRun(t, ctx, agent.Options{
		WorkDir: t.TempDir(), ClaudePath: fakeClaude(t), ListenMode: agent.ListenTCP, TCPAddr: "127.0.0.1:0",
	})
	rt := client.TCPTransport()
	defer rt.(interface{ CloseIdleConnections() }).CloseIdleConnections()
	c := client.NewWithBaseURL(rt, "http://"+addr)
	h, err := c.Health(testContext(t))
	if err != nil || h.Status != "ok" {
		t.Fatalf("Health = %+v, %v", h, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if _, err := c.Health(testContext(t)); err == nil {
		t.Fatal("agent still answers after Run returned")
	}
}

func TestRunRejectsUnknownListenMode(t *testing.T) {
	t.Parallel()
	srv, err := agent.New(agent.Options{ListenMode: "carrier-pigeon", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Run(testContext(t)); err == nil {
		t.Fatal("Run with an unknown listen mode succeeded")
	}
}
