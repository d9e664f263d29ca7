package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/client"

	"github.com/workspaced/workspaced/agent/api"
	agentclient "github.com/workspaced/workspaced/agent/client"
	"github.com/workspaced/workspaced/internal/testenv"
	"github.com/workspaced/workspaced/runtime/runtimetest"
	"github.com/workspaced/workspaced/workspace"
)

// testLabel marks every container a test creates, so cleanup removes
// exactly those (tests of other packages share the engine).
const testLabel = "test.workspaced.id"

// testImage is the workspace image the tests run (`make images`);
// WORKSPACE_TEST_IMAGE overrides it.
func testImage() string {
	if img := os.Getenv("WORKSPACE_TEST_IMAGE"); img != "" {
		return img
	}
	return "workspaced/workspace:test"
}

// env is one test's engine client, runtime and cleanup scope.
type env struct {
	cli    *client.Client
	rt     *Runtime
	testID string
	base   string
}

// newEnv builds a Runtime on the local engine with a private socket base
// and test label; every container carrying the label is force-removed at
// cleanup. mod adjusts the options.
func newEnv(t testing.TB, mod func(*Options)) *env {
	t.Helper()
	cli := testenv.Docker(t)
	testenv.Image(t, cli, testImage())
	// A short base keeps socket paths under the 107-byte limit.
	base, err := os.MkdirTemp("", "wsd")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{cli: cli, testID: runtimetest.Token(t), base: base}
	t.Cleanup(func() { e.removeAll(t); _ = os.RemoveAll(base) })
	opts := Options{
		Image:          testImage(),
		SocketBasePath: base,
		Labels:         map[string]string{testLabel: e.testID},
		StopGrace:      time.Second,
		Logger:         testLogger(t),
	}
	if mod != nil {
		mod(&opts)
	}
	e.rt, err = New(cli, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

// removeAll force-removes every container of this test.
func (e *env) removeAll(t testing.TB) {
	testenv.RemoveLabelled(t, e.cli, testLabel, e.testID)
}

func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// startReady starts a workspace and waits until its agent answers.
func (e *env) startReady(t testing.TB, spec workspace.StartSpec) workspace.Info {
	t.Helper()
	ctx := testCtx(t, 2*time.Minute)
	info, err := e.rt.Start(ctx, spec)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := e.rt.WaitReady(ctx, info); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	return info
}

// result is what a command run through the agent printed and how it ended.
type result struct {
	Output   string // stdout and stderr lines, each ending in "\n"
	ExitCode int
}

// run runs argv inside the workspace through the agent's POST /execute over
// the workspace socket, the way the backend does.
func (e *env) run(t testing.TB, info workspace.Info, argv ...string) result {
	t.Helper()
	tr, err := e.rt.Transport(info.Endpoint)
	if err != nil {
		t.Fatalf("Transport: %v", err)
	}
	defer tr.(interface{ CloseIdleConnections() }).CloseIdleConnections()
	stream, err := agentclient.New(tr).Execute(testCtx(t, time.Minute), api.ExecuteRequest{Kind: api.KindCommand, Argv: argv})
	if err != nil {
		t.Fatalf("execute %q: %v", argv, err)
	}
	defer stream.Close()
	var out strings.Builder
	for {
		ev, err := stream.Next()
		if errors.Is(err, io.EOF) {
			t.Fatalf("execute %q: stream ended without a done event; output so far:\n%s", argv, out.String())
		}
		if err != nil {
			t.Fatalf("execute %q: read events: %v", argv, err)
		}
		switch ev.Event {
		case api.EventStdout, api.EventStderr:
			out.WriteString(ev.Data + "\n")
		case api.EventStdoutPart, api.EventStderrPart:
			out.WriteString(ev.Data)
		case api.EventDone:
			done := stream.Done()
			if done.Error != "" {
				out.WriteString(fmt.Sprintf("[agent: %s]\n", done.Error))
			}
			// Read to the end: the agent takes the next run only after
			// its handler returned, which ends the response.
			if _, err := io.Copy(io.Discard, stream.Body()); err != nil {
				t.Fatalf("execute %q: drain: %v", argv, err)
			}
			return result{Output: out.String(), ExitCode: done.ExitCode}
		}
	}
}

// testLogger logs through t.Log, so output shows with the failing test.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tlogWriter struct{ t testing.TB }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
