package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Kinds of run.
const (
	// KindClaude runs the Claude Code CLI on a prompt (the default).
	KindClaude = "claude"
	// KindCommand runs an argv directly, without a shell.
	KindCommand = "command"
)

// SSE event types the agent emits on /execute.
const (
	// EventMessage carries one stream-json line of a claude run, verbatim.
	EventMessage = "message"
	// EventLog carries a line of a claude run's stdout that is not JSON.
	EventLog = "log"
	// EventStdout and EventStderr carry one line of output (without its
	// line end). A claude run's stderr is also sent as EventStderr.
	EventStdout = "stdout"
	EventStderr = "stderr"
	// EventStdoutPart and EventStderrPart carry a piece of a line longer
	// than the agent's line limit (1 MiB): the line is the concatenation of
	// the parts that precede the next event of the same stream and that
	// event's data (stdout, message or log; stderr).
	EventStdoutPart = "stdout_part"
	EventStderrPart = "stderr_part"
	// EventDone is always the last event; its data is a Done.
	EventDone = "done"
)

// ExecuteRequest is the JSON body of POST /execute.
type ExecuteRequest struct {
	// Kind is KindClaude (when empty) or KindCommand.
	Kind string `json:"kind,omitempty"`
	// Prompt is the prompt of a claude run (required for it).
	Prompt string `json:"prompt,omitempty"`
	// SessionID resumes a Claude Code session (--resume).
	SessionID string `json:"session_id,omitempty"`
	// Argv is the command of a command run (required for it); Argv[0] is
	// looked up in the agent's PATH.
	Argv []string `json:"argv,omitempty"`
	// AllowedTools is passed as --allowedTools.
	AllowedTools []string `json:"allowed_tools,omitempty"`
	// SystemPrompt is passed as --append-system-prompt.
	SystemPrompt string `json:"system_prompt,omitempty"`
	// MaxTurns is passed as --max-turns when positive.
	MaxTurns int `json:"max_turns,omitempty"`
	// MCPConfig is a JSON object written to a file passed as --mcp-config.
	MCPConfig json.RawMessage `json:"mcp_config,omitempty"`
	// TimeoutS bounds the run in seconds; 0 means the agent's default.
	TimeoutS int `json:"timeout_s,omitempty"`
}

var (
	sessionRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$`)
	toolRE    = regexp.MustCompile(`^[^-\s][^\x00]*$`)
)

// Validate reports what is wrong with r, after defaulting Kind. Its errors
// wrap ErrBadRequest.
func (r *ExecuteRequest) Validate() error {
	if r.Kind == "" {
		r.Kind = KindClaude
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrBadRequest}, a...)...)
	}
	switch r.Kind {
	case KindClaude:
		if strings.TrimSpace(r.Prompt) == "" {
			return bad("prompt is required")
		}
		if strings.IndexByte(r.Prompt, 0) >= 0 || strings.IndexByte(r.SystemPrompt, 0) >= 0 {
			return bad("prompt contains NUL")
		}
	case KindCommand:
		if len(r.Argv) == 0 || r.Argv[0] == "" {
			return bad("argv is required")
		}
		for _, a := range r.Argv {
			if strings.IndexByte(a, 0) >= 0 {
				return bad("argv contains NUL")
			}
		}
	default:
		return bad("kind must be %q or %q, not %q", KindClaude, KindCommand, r.Kind)
	}
	if r.SessionID != "" && !sessionRE.MatchString(r.SessionID) {
		return bad("session_id must match %s", sessionRE)
	}
	for _, t := range r.AllowedTools {
		if !toolRE.MatchString(t) {
			return bad("allowed_tools entry %q is invalid", t)
		}
	}
	if r.MaxTurns < 0 {
		return bad("max_turns must not be negative")
	}
	if r.TimeoutS < 0 {
		return bad("timeout_s must not be negative")
	}
	if len(r.MCPConfig) > 0 && string(r.MCPConfig) != "null" {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(r.MCPConfig, &obj); err != nil {
			return bad("mcp_config must be a JSON object")
		}
	}
	return nil
}

// Health is the JSON body of GET /health.
type Health struct {
	// Status is "ok" while the agent serves, "stopping" during shutdown.
	Status  string `json:"status"`
	Version string `json:"version"`
	// Busy is true while a run (or a PUT /files) is in progress.
	Busy bool `json:"busy"`
	// UptimeS is the agent's uptime in seconds.
	UptimeS float64 `json:"uptime_s"`
}

// File trees GET/PUT /files/{tree} move (/files is TreeWorkspace; an
// agent before trees answers 404 to /files/{tree}, never the wrong tree).
const (
	// TreeWorkspace is the workspace directory (/workspace); the default.
	TreeWorkspace = "workspace"
	// TreeSession is the Claude Code state, $HOME/.claude of the runs:
	// session transcripts, settings the CLI writes.
	TreeSession = "session"
)

// Trees are the trees a save holds, in the order a restore puts them back.
var Trees = []string{TreeWorkspace, TreeSession}

// TreeDigest is the JSON body of GET /files/{tree}/digest: a digest of a tree's
// listing (names, types, modes, sizes, modification and change times,
// inode numbers, link targets), computed from metadata alone. Any write
// to a file changes its change time (which no process can set), so an
// unchanged digest means an unchanged tree; a tree restored into a new
// workspace has a new digest although its contents are the same.
type TreeDigest struct {
	Tree    string `json:"tree"`
	Digest  string `json:"digest"`
	Entries int    `json:"entries"`
	Bytes   int64  `json:"bytes"`
}

// Done is the data of the final EventDone of a run.
type Done struct {
	// ExitCode is the process's exit code; -1 when it was killed by a
	// signal, 127 when it could not be started.
	ExitCode int `json:"exit_code"`
	// DurationMS is the run's wall time in milliseconds.
	DurationMS int64 `json:"duration_ms"`
	// Signal names the signal that ended the process, if one did.
	Signal string `json:"signal,omitempty"`
	// Reason says why the agent ended the run early: "timeout",
	// "cancelled" (client gone) or "shutdown"; empty when the process
	// ended by itself.
	Reason string `json:"reason,omitempty"`
	// Error says why the process could not be started.
	Error string `json:"error,omitempty"`
}

// Error is the JSON body of every 4xx/5xx response.
type Error struct {
	Error string `json:"error"`
}

// Errors mapped to HTTP statuses in one place (writeError).
var (
	// ErrBadRequest: malformed JSON or invalid fields (400).
	ErrBadRequest = errors.New("bad request")
	// ErrBusy: a run or a file replacement is in progress (409).
	ErrBusy = errors.New("agent busy")
	// ErrShuttingDown: the agent is stopping and takes no new work (503).
	ErrShuttingDown = errors.New("agent shutting down")
	// ErrTooLarge: the archive exceeds the size limit (413).
	ErrTooLarge = errors.New("archive too large")
	// ErrRefused: an archive entry is not allowed (400).
	ErrRefused = errors.New("archive refused")
	// ErrNotFound: no such run (404): not the agent's current or last one.
	ErrNotFound = errors.New("not found")
	// ErrGone: the run's events after the asked id were dropped from the
	// agent's bounded log (410).
	ErrGone = errors.New("gone")
)

// RunIDHeader names the backend's run on POST /execute. A run started with
// it is detached from the request: the client going away does not cancel
// it, and its events can be read again (GET /runs/{id}/events) until the
// next run starts. Without it, a client disconnect cancels the run.
const RunIDHeader = "Workspaced-Run-Id"

var runIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// ValidRunID reports whether id can name a run: 1 to 64 of [A-Za-z0-9_-],
// not starting with '-' or '_'.
func ValidRunID(id string) bool { return runIDRE.MatchString(id) }

// MaxEventID is the largest event id: ids stay exact in a JSON number
// (2^53-1), so every client language can hold them.
const MaxEventID = 1<<53 - 1

// ErrBadEventID is returned by ParseEventID.
var ErrBadEventID = errors.New("bad event id")

// ParseEventID parses an event id as sent in an SSE "id:" field, a
// Last-Event-ID header or an ?after= parameter: a decimal integer from 0
// to MaxEventID, digits only, no sign, no leading zero, no spaces. The
// empty string is 0 (the start of the run).
func ParseEventID(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	if len(s) > 16 || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("%w: %.20q", ErrBadEventID, s)
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%w: %.20q", ErrBadEventID, s)
		}
		n = n*10 + int64(c-'0')
	}
	if n > MaxEventID {
		return 0, fmt.Errorf("%w: %.20q is above %d", ErrBadEventID, s, int64(MaxEventID))
	}
	return n, nil
}
