package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/workspaced/workspaced/agent/api"

	"github.com/workspaced/workspaced/sse"
)

// promptArgMax is the longest prompt passed on the command line; longer
// ones (and ones that look like a flag) go to the CLI's stdin instead,
// because Linux caps one argument at 128 KiB.
const promptArgMax = 100 << 10

const (
	streamStdout = iota
	streamStderr
)

// outLine is one line (or piece of one) a run printed.
type outLine struct {
	stream  int
	data    string
	partial bool
}

func (s *Server) handleExecute(w http.ResponseWriter, r *http.Request) {
	runID := r.Header.Get(api.RunIDHeader)
	if runID != "" && !api.ValidRunID(runID) {
		writeError(w, fmt.Errorf("%w: %s %.70q is not a run id", api.ErrBadRequest, api.RunIDHeader, runID))
		return
	}
	req, err := decodeExecute(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	release, err := s.acquire()
	if err != nil {
		writeError(w, err)
		return
	}
	spec, cleanup, err := s.buildSpec(req)
	if err != nil {
		release()
		writeError(w, err)
		return
	}
	// A named run is detached from this request: it ends by itself, by its
	// timeout, by POST /runs/{id}/cancel or by the agent's shutdown. An
	// anonymous one also ends when its client goes away.
	base := context.WithoutCancel(r.Context())
	if runID == "" {
		base = r.Context()
	}
	ctx, cancel := context.WithCancel(base)
	rl := newRunLog(runID, s.opts.RunLogBytes, cancel)
	s.setRun(rl)
	log := s.log.With("kind", req.Kind, "run", runID)
	go func() {
		defer cancel()
		began := time.Now()
		done := s.run(ctx, req, spec, rl, log) // no process of the run is left
		done.DurationMS = time.Since(began).Milliseconds()
		// The slot is free before the final event is logged: a client that
		// has read "done" may start its next run at once and must not get
		// 409.
		cleanup()
		release()
		b, _ := json.Marshal(done)
		rl.add(api.EventDone, string(b), true)
		log.Info("run finished", "exit_code", done.ExitCode, "reason", done.Reason, "duration_ms", done.DurationMS)
	}()
	onGone := func() {}
	if runID == "" {
		onGone = cancel
	}
	s.follow(w, r, rl, 0, onGone)
}

func decodeExecute(w http.ResponseWriter, r *http.Request) (api.ExecuteRequest, error) {
	var req api.ExecuteRequest
	body := http.MaxBytesReader(w, r.Body, DefaultMaxRequest)
	// Read the body to its end: only then does the server watch the
	// connection, so that a client going away cancels the run at once.
	defer func() { _, _ = io.Copy(io.Discard, body) }()
	dec := json.NewDecoder(body)
	if err := dec.Decode(&req); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return req, fmt.Errorf("%w: decode request: %w", api.ErrBadRequest, err)
		}
		return req, fmt.Errorf("%w: decode request: %v", api.ErrBadRequest, err)
	}
	if dec.More() {
		return req, fmt.Errorf("%w: trailing data after the request object", api.ErrBadRequest)
	}
	if err := req.Validate(); err != nil {
		return req, err
	}
	return req, nil
}

// buildSpec turns a request into argv, environment and stdin. cleanup
// removes per-run files.
func (s *Server) buildSpec(req api.ExecuteRequest) (procSpec, func(), error) {
	spec := procSpec{env: s.env(), dir: s.opts.WorkDir}
	cleanup := func() {}
	if req.Kind == api.KindCommand {
		spec.argv = req.Argv
		return spec, cleanup, nil
	}
	argv := []string{s.opts.ClaudePath, "-p"}
	if len(req.Prompt) > promptArgMax || strings.HasPrefix(req.Prompt, "-") {
		spec.stdin = strings.NewReader(req.Prompt)
	} else {
		argv = append(argv, req.Prompt)
	}
	argv = append(argv, "--output-format", "stream-json", "--verbose")
	if req.SessionID != "" {
		argv = append(argv, "--resume", req.SessionID)
	}
	if req.SystemPrompt != "" {
		argv = append(argv, "--append-system-prompt", req.SystemPrompt)
	}
	if req.MaxTurns > 0 {
		argv = append(argv, "--max-turns", strconv.Itoa(req.MaxTurns))
	}
	if len(req.MCPConfig) > 0 && string(req.MCPConfig) != "null" {
		dir, err := os.MkdirTemp(s.opts.TempDir, "agent-run-")
		if err != nil {
			return spec, cleanup, fmt.Errorf("create run dir: %w", err)
		}
		cleanup = func() { _ = os.RemoveAll(dir) }
		file := filepath.Join(dir, "mcp.json")
		if err := os.WriteFile(file, req.MCPConfig, 0o600); err != nil {
			cleanup()
			return spec, func() {}, fmt.Errorf("write mcp config: %w", err)
		}
		argv = append(argv, "--mcp-config", file)
	}
	if len(req.AllowedTools) > 0 {
		// Variadic in the CLI: keep it last so it swallows nothing else.
		argv = append(argv, "--allowedTools")
		argv = append(argv, req.AllowedTools...)
	}
	spec.argv = argv
	return spec, cleanup, nil
}

// env is the complete environment of a run: no variable of the agent's own
// environment is passed on, so no credential can reach a run.
func (s *Server) env() []string {
	env := []string{
		"PATH=" + s.opts.Path,
		"HOME=" + s.opts.Home,
		"CLAUDE_CODE_USE_BEDROCK=1",
		"CLAUDE_CODE_SKIP_BEDROCK_AUTH=1",
		"ANTHROPIC_BEDROCK_BASE_URL=" + proxyURLForWorkspace,
		"HTTP_PROXY=" + proxyURLForWorkspace,
		"HTTPS_PROXY=" + proxyURLForWorkspace,
		"NO_PROXY=localhost,127.0.0.1",
	}
	return append(env, s.opts.ExtraEnv...)
}

// run starts the process, logs its output as events and returns how it
// ended; when it returns, no process of the run is left.
func (s *Server) run(ctx context.Context, req api.ExecuteRequest, spec procSpec, rl *runLog, log *slog.Logger) api.Done {
	ctx, cancel, cause := s.runContext(ctx, req)
	defer cancel()

	p, err := startProc(spec, s.opts.KillGrace)
	if err != nil {
		return api.Done{ExitCode: 127, Error: err.Error()}
	}
	lines := make(chan outLine, 64)
	var wg sync.WaitGroup
	for stream, f := range []*os.File{p.stdout, p.stderr} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = splitLines(f, s.opts.MaxLineBytes, func(data []byte, partial bool) {
				lines <- outLine{stream: stream, data: string(data), partial: partial}
			})
		}()
	}
	go func() { wg.Wait(); close(lines) }()

	exitc := make(chan exit, 1)
	go func() {
		ex := p.wait(ctx, s.opts.KillGrace, cause)
		killStrays()
		exitc <- ex
	}()

	ex := s.pump(req.Kind, lines, exitc, rl, p)
	closeAll(p.stdout, p.stderr)
	if ex.reason != "" {
		log.Warn("run ended early", "reason", ex.reason)
	}
	return api.Done{ExitCode: ex.code, Signal: ex.signal, Reason: ex.reason}
}

// runContext derives the run's context: it ends when the client goes, the
// timeout passes or the agent shuts down; cause tells which.
func (s *Server) runContext(reqCtx context.Context, req api.ExecuteRequest) (context.Context, context.CancelFunc, func() string) {
	timeout := s.opts.DefaultTimeout
	if req.TimeoutS > 0 {
		timeout = time.Duration(req.TimeoutS) * time.Second
	}
	ctx, cancel := context.WithCancelCause(reqCtx)
	errTimeout := errors.New("timeout")
	errShutdown := errors.New("shutdown")
	var timer *time.Timer
	if timeout > 0 {
		timer = time.AfterFunc(timeout, func() { cancel(errTimeout) })
	}
	go func() {
		select {
		case <-s.stopping:
			cancel(errShutdown)
		case <-ctx.Done():
		}
	}()
	cause := func() string {
		switch context.Cause(ctx) {
		case errTimeout:
			return "timeout"
		case errShutdown:
			return "shutdown"
		}
		return "cancelled"
	}
	return ctx, func() {
		if timer != nil {
			timer.Stop()
		}
		cancel(nil)
	}, cause
}

// pump logs lines as events until the output ends and the process group
// is gone.
func (s *Server) pump(kind string, lines <-chan outLine, exitc <-chan exit, rl *runLog, p *proc) exit {
	var (
		ex     exit
		exited bool
		drain  <-chan time.Time
		names  = namer{kind: kind}
	)
	for lines != nil || !exited {
		select {
		case l, ok := <-lines:
			if !ok {
				lines = nil
				continue
			}
			rl.add(names.name(l), l.data, false)
		case ex = <-exitc:
			exited = true
			exitc = nil
			// The group is gone; only a process that escaped it can hold a
			// pipe open now. Give the readers a moment, then close.
			drain = time.After(s.opts.KillGrace)
		case <-drain:
			closeAll(p.stdout, p.stderr)
			drain = nil
		}
	}
	return ex
}

// namer picks each line's event type. Pieces of a split stdout line are
// api.EventStdoutPart; the piece that ends a split claude line is api.EventMessage
// when the line starts with "{" and ends with "}" (it is too long to
// validate as a whole), api.EventLog otherwise.
type namer struct {
	kind     string
	inPart   bool
	partJSON bool
}

func (n *namer) name(l outLine) string {
	if l.stream == streamStderr {
		if l.partial {
			return api.EventStderrPart
		}
		return api.EventStderr
	}
	if l.partial {
		if !n.inPart {
			n.inPart = true
			n.partJSON = strings.HasPrefix(strings.TrimLeft(l.data, " \t"), "{")
		}
		return api.EventStdoutPart
	}
	wasPart := n.inPart
	n.inPart = false
	switch {
	case n.kind == api.KindCommand:
		return api.EventStdout
	case wasPart && n.partJSON && strings.HasSuffix(strings.TrimRight(l.data, " \t"), "}"):
		return api.EventMessage
	case !wasPart && isJSONLine(l.data):
		return api.EventMessage
	default:
		return api.EventLog
	}
}

func isJSONLine(s string) bool {
	t := strings.TrimSpace(s)
	return strings.HasPrefix(t, "{") && json.Valid([]byte(t))
}

// eventWriter writes a run's events to one reader and bounds each write,
// so a reader that stops reading cannot hold its handler forever.
type eventWriter struct {
	w       *sse.Writer
	rc      *http.ResponseController
	timeout time.Duration
}

// buffer writes ev without flushing it (see flush).
func (e *eventWriter) buffer(ev sse.Event) error {
	e.deadline()
	return e.w.BufferEvent(ev)
}

func (e *eventWriter) flush() error {
	e.deadline()
	return e.w.Flush()
}

func (e *eventWriter) comment(text string) error {
	e.deadline()
	return e.w.WriteComment(text)
}

func (e *eventWriter) deadline() {
	_ = e.rc.SetWriteDeadline(time.Now().Add(e.timeout)) // unsupported: no bound
}
