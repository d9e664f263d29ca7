package agent

import (
	"log/slog"
	"time"
)

// Listen modes (WORKSPACE_LISTEN_MODE).
const (
	ListenUDS = "uds"
	ListenTCP = "tcp"
)

// Defaults of Options.
const (
	DefaultWorkDir       = "/workspace"
	DefaultSocketPath    = "/var/run/ws/agent.sock"
	DefaultTCPAddr       = ":9000"
	DefaultProxyListen   = "127.0.0.1:8080"
	DefaultClaudePath    = "claude"
	DefaultKillGrace     = 5 * time.Second
	DefaultMaxTarBytes   = 1 << 30
	DefaultMaxLineBytes  = 1 << 20
	DefaultHeartbeat     = 5 * time.Second
	DefaultWriteTimeout  = 30 * time.Second
	DefaultRunLogBytes   = 16 << 20
	DefaultHome          = "/home/appuser"
	DefaultPath          = "/usr/local/bin:/usr/bin:/bin"
	DefaultMaxRequest    = 8 << 20
	DefaultSocketMode    = 0o660
	proxyURLForWorkspace = "http://127.0.0.1:8080"
)

// Options configure a Server. The zero value of every field means its
// default; cmd/workspace-agent fills them from the environment.
type Options struct {
	// WorkDir is the workspace directory runs start in and /files moves
	// (DefaultWorkDir).
	WorkDir string
	// ClaudePath is the Claude Code CLI, a path or a name looked up in
	// Path (DefaultClaudePath).
	ClaudePath string
	// Path is the PATH of every run (DefaultPath).
	Path string
	// Home is the HOME of every run (DefaultHome).
	Home string
	// ExtraEnv is added to every run's environment ("NAME=value"). It is
	// empty by default and must never hold a credential.
	ExtraEnv []string
	// TempDir holds per-run files (the MCP config); os.TempDir() if empty.
	TempDir string
	// KillGrace is the time between SIGTERM and SIGKILL (DefaultKillGrace).
	KillGrace time.Duration
	// DefaultTimeout bounds a run that asks for no timeout_s; 0 means none.
	DefaultTimeout time.Duration
	// MaxTarBytes bounds a PUT /files archive, both the request body and
	// the sum of its file sizes (DefaultMaxTarBytes).
	MaxTarBytes int64
	// MaxLineBytes is the longest output line sent as one event; longer
	// lines are split (DefaultMaxLineBytes).
	MaxLineBytes int
	// Heartbeat is the interval of SSE comments on a quiet run
	// (DefaultHeartbeat); negative disables them.
	Heartbeat time.Duration
	// WriteTimeout bounds writing one event to a client; a client that
	// reads nothing for that long is dropped and its run killed
	// (DefaultWriteTimeout).
	WriteTimeout time.Duration
	// RunLogBytes bounds the event log of the current run that
	// GET /runs/{id}/events reads (DefaultRunLogBytes); the oldest events
	// are dropped beyond it.
	RunLogBytes int
	// ShutdownTimeout bounds the drain on shutdown (KillGrace + 10s).
	ShutdownTimeout time.Duration
	// Subreaper makes the agent process a child subreaper
	// (PR_SET_CHILD_SUBREAPER) so that orphans of a run are reparented to
	// it and reaped when the run ends. It changes the whole process.
	Subreaper bool
	// Version is reported by /health.
	Version string
	// Logger receives the agent's logs; slog.Default() if nil.
	Logger *slog.Logger

	// ListenMode is ListenUDS (default) or ListenTCP; used by Run only.
	ListenMode string
	// SocketPath is the Unix socket of ListenUDS (DefaultSocketPath),
	// created with mode 0660.
	SocketPath string
	// TCPAddr is the address of ListenTCP (DefaultTCPAddr).
	TCPAddr string
	// ProxySocket, when set, makes Run forward ProxyListen to this Unix
	// socket (the host-side credential proxy under Docker).
	ProxySocket string
	// ProxyListen is the forwarder's TCP address (DefaultProxyListen).
	ProxyListen string
}

func (o Options) withDefaults() Options {
	def := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
	}
	def(&o.WorkDir, DefaultWorkDir)
	def(&o.ClaudePath, DefaultClaudePath)
	def(&o.Path, DefaultPath)
	def(&o.Home, DefaultHome)
	def(&o.ListenMode, ListenUDS)
	def(&o.SocketPath, DefaultSocketPath)
	def(&o.TCPAddr, DefaultTCPAddr)
	def(&o.ProxyListen, DefaultProxyListen)
	if o.KillGrace <= 0 {
		o.KillGrace = DefaultKillGrace
	}
	if o.MaxTarBytes <= 0 {
		o.MaxTarBytes = DefaultMaxTarBytes
	}
	if o.MaxLineBytes <= 0 {
		o.MaxLineBytes = DefaultMaxLineBytes
	}
	if o.Heartbeat == 0 {
		o.Heartbeat = DefaultHeartbeat
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.RunLogBytes <= 0 {
		o.RunLogBytes = DefaultRunLogBytes
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = o.KillGrace + 10*time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}
