package docker

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/workspaced/workspaced/deploy/seccomp"
	"github.com/workspaced/workspaced/proxy/mcprule"
	"github.com/workspaced/workspaced/workspace"
)

// Engine is the part of the Docker client the runtime uses;
// *github.com/docker/docker/client.Client satisfies it. Build the client
// with client.WithAPIVersionNegotiation: engines older than the library are
// common.
type Engine interface {
	ContainerCreate(ctx context.Context, config *container.Config, hostConfig *container.HostConfig, networkingConfig *network.NetworkingConfig, platform *ocispec.Platform, containerName string) (container.CreateResponse, error)
	ContainerStart(ctx context.Context, containerID string, options container.StartOptions) error
	ContainerStop(ctx context.Context, containerID string, options container.StopOptions) error
	ContainerRemove(ctx context.Context, containerID string, options container.RemoveOptions) error
	ContainerWait(ctx context.Context, containerID string, condition container.WaitCondition) (<-chan container.WaitResponse, <-chan error)
	ContainerInspect(ctx context.Context, containerID string) (container.InspectResponse, error)
	ContainerList(ctx context.Context, options container.ListOptions) ([]container.Summary, error)
}

// ProxyHost is the in-process credential proxy as the runtime uses it: one
// Unix listener per workspace, inside the workspace's socket directory.
// Implementations are safe for concurrent use.
type ProxyHost interface {
	// Open starts serving the workspace keyed by key (its start token) on
	// socketPath, replacing a stale socket file there. The socket must be
	// connectable by uid 1000 (the agent). A Runtime opens each key once
	// (before the container starts) until it closes it; a new Runtime (a
	// restarted backend) re-opens the keys of workspaces that Start finds
	// already running.
	Open(ctx context.Context, key, socketPath string) error
	// Close stops serving key and removes its socket. Closing an unknown
	// key returns nil.
	Close(key string) error
	// SetRules replaces key's MCP header rules (before or after Open).
	SetRules(key string, rules []mcprule.Rule) error
}

// Options configure a Runtime. Zero values take the defaults noted.
type Options struct {
	// Image is the workspace image (required), e.g. workspaced/workspace:dev.
	Image string
	// SocketBasePath holds one socket directory per workspace
	// (default /var/run/workspace-sockets). Keep it short: a Unix socket
	// path is limited to 107 bytes and the token (up to 64) is part of it.
	SocketBasePath string
	// SeccompProfile is the profile JSON (Docker's format); nil means the
	// profile shipped in deploy/seccomp. There is no way to run unconfined.
	SeccompProfile []byte
	// AppArmorProfile names a loaded AppArmor profile; empty leaves the
	// engine's default (docker-default where AppArmor is enabled).
	AppArmorProfile string
	// NanoCPUs is the CPU limit in 1e-9 CPUs (default 2 CPUs).
	NanoCPUs int64
	// MemoryBytes is the memory limit, swap included (default 2 GiB).
	MemoryBytes int64
	// PidsLimit caps the number of processes (default 256).
	PidsLimit int64
	// StopGrace is how long Stop waits after SIGTERM before SIGKILL
	// (default 10s; rounded up to whole seconds, as the engine wants).
	StopGrace time.Duration
	// UID and GID the agent runs as and owns its tmpfs mounts and socket
	// directory with (default 1000:1000, the image's appuser).
	UID, GID int
	// NamePrefix is prepended to the token to name the container (default
	// "ws-"; Docker names need two characters, tokens may have one).
	NamePrefix string
	// Env is extra, non-secret environment for the agent (e.g. the Bedrock
	// base URL of the proxy). Never put credentials here: docs/contracts.md §4.7.5.
	Env []string
	// Labels are added to every container and scope List to containers
	// that carry them too (tests use a per-test label). Keys under
	// io.workspaced. are reserved.
	Labels map[string]string
	// Proxy, when set, gets one listener per workspace (see ProxyHost).
	Proxy ProxyHost
	// Logger receives the runtime's logs (default slog.Default()).
	Logger *slog.Logger
	// Now is the clock stamped into the created-at label (default time.Now).
	Now func() time.Time
	// StartConcurrency bounds the container starts (create, start) running
	// on the engine at once; later ones wait in arrival order (0: no
	// bound). See docs/operations.md for sizing.
	StartConcurrency int
	// Fault, when set, is called at named points of Start ("created":
	// the container exists, not started); fault-injection builds crash the
	// process there. Nil in production.
	Fault func(point string)
}

// Defaults for Options.
const (
	DefaultSocketBasePath = "/var/run/workspace-sockets"
	DefaultNanoCPUs       = 2_000_000_000
	DefaultMemoryBytes    = 2 << 30
	DefaultPidsLimit      = 256
	DefaultStopGrace      = 10 * time.Second
	DefaultUID            = 1000
	DefaultGID            = 1000
	DefaultNamePrefix     = "ws-"
)

// maxSocketPath is the longest Unix socket path Linux accepts
// (sizeof(sun_path) - 1).
const maxSocketPath = 107

func (o Options) withDefaults() (Options, error) {
	if o.Image == "" {
		return o, fmt.Errorf("docker runtime: Options.Image is required")
	}
	if o.SocketBasePath == "" {
		o.SocketBasePath = DefaultSocketBasePath
	}
	if !filepath.IsAbs(o.SocketBasePath) {
		return o, fmt.Errorf("docker runtime: SocketBasePath %q is not absolute", o.SocketBasePath)
	}
	o.SocketBasePath = filepath.Clean(o.SocketBasePath)
	if len(o.SeccompProfile) == 0 {
		o.SeccompProfile = seccomp.Profile()
	}
	if o.NanoCPUs == 0 {
		o.NanoCPUs = DefaultNanoCPUs
	}
	if o.MemoryBytes == 0 {
		o.MemoryBytes = DefaultMemoryBytes
	}
	if o.PidsLimit == 0 {
		o.PidsLimit = DefaultPidsLimit
	}
	if o.StopGrace == 0 {
		o.StopGrace = DefaultStopGrace
	}
	if o.UID == 0 {
		o.UID = DefaultUID
	}
	if o.GID == 0 {
		o.GID = DefaultGID
	}
	if o.NamePrefix == "" {
		o.NamePrefix = DefaultNamePrefix
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	for k := range o.Labels {
		if strings.HasPrefix(k, labelPrefix) {
			return o, fmt.Errorf("docker runtime: label %q uses the reserved prefix %s", k, labelPrefix)
		}
	}
	if o.NanoCPUs < 0 || o.MemoryBytes < 0 || o.PidsLimit < 0 || o.StopGrace < 0 {
		return o, fmt.Errorf("docker runtime: negative resource limit")
	}
	if err := workspace.CheckScratch(o.MemoryBytes>>20, TmpfsSizes()); err != nil {
		return o, fmt.Errorf("docker runtime: memory limit %d bytes: %w", o.MemoryBytes, err)
	}
	return o, nil
}
