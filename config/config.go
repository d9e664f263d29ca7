// Package config is workspaced's one configuration struct, parsed once from
// the environment in cmd/ (through envconf, like every binary of the
// project) and passed down as plain values. Nothing else in the codebase
// reads the environment. The credential proxy's part is proxyconfig.Config,
// the very struct the ECS sidecar parses. Every variable is documented in
// docs/configuration.md (a test keeps the two in step).
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/workspaced/workspaced/config/envconf"
	"github.com/workspaced/workspaced/proxy/proxyconfig"
)

// Runtime kinds (CONTAINER_MANAGER_TYPE) and bus kinds (BUS).
const (
	RuntimeDocker = "docker"
	RuntimeECS    = "ecs"
	BusGoChannel  = "gochannel"
	BusSQS        = "sqs"
)

// Config is the whole configuration of cmd/workspaced. Field tags name the
// environment variable and its default; seed names are kept where the seed
// has them (CONTAINER_MANAGER_TYPE, WORKSPACE_SOCKET_BASE_PATH, ...).
type Config struct {
	HTTP    HTTP
	Auth    Auth
	Redis   Redis
	Bus     Bus
	Runtime string `env:"CONTAINER_MANAGER_TYPE" envDefault:"docker"`
	// Deployment names this installation; every workspace it starts is
	// labelled with it, and List, the event watcher and the orphan reaper
	// only see workspaces carrying it, so several deployments (or test
	// runs) can share one Docker host or ECS cluster.
	Deployment string `env:"WORKSPACED_DEPLOYMENT" envDefault:"default"`
	Docker     Docker
	ECS        ECS
	AWS        AWS
	// Proxy is the in-process credential proxy of Docker mode (one Unix
	// socket per workspace): the same variables, parsed by the same type,
	// as the ECS sidecar (cmd/credential-proxy).
	Proxy proxyconfig.Config
	Pool  Pool
	GC    GC
	Files Files
	Runs  Runs
	Log   Log
}

// Runs configures runs: their event logs in Redis, how long a run without
// a client goes on, the relay lease (docs/runs.md).
type Runs struct {
	// DetachedTTL cancels a run that has had no client stream open for
	// this long.
	DetachedTTL time.Duration `env:"RUN_DETACHED_TTL" envDefault:"10m"`
	// LogMaxEvents caps a run's event log (XADD MINID, a batch at a
	// time); older events are trimmed and a follower asking for them gets
	// run_log_trimmed.
	LogMaxEvents int64 `env:"RUN_LOG_MAX_EVENTS" envDefault:"10000"`
	// LogTTL keeps a run's record and event log after it ended.
	LogTTL time.Duration `env:"RUN_LOG_TTL" envDefault:"1h"`
	// LeaseTTL is a run's relay lease: a replica that dies is replaced as
	// relayer within about this long.
	RelayLeaseTTL time.Duration `env:"RUN_RELAY_LEASE_TTL" envDefault:"10s"`
}

// HTTP is the API listener and its timeouts.
type HTTP struct {
	Addr             string        `env:"HTTP_ADDR" envDefault:":8000"`
	ProvisionTimeout time.Duration `env:"PROVISION_TIMEOUT" envDefault:"90s"`
	Heartbeat        time.Duration `env:"SSE_HEARTBEAT_INTERVAL" envDefault:"15s"`
	ShutdownTimeout  time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"30s"`
	MaxBodyBytes     int64         `env:"MAX_REQUEST_BYTES" envDefault:"1048576"`
	// HealthTimeout bounds the agent health check made before relaying to
	// a ready workspace; HealthCache is how long a success spares the next
	// request that check.
	HealthTimeout time.Duration `env:"WORKSPACE_HEALTH_TIMEOUT" envDefault:"2s"`
	HealthCache   time.Duration `env:"WORKSPACE_HEALTH_CACHE" envDefault:"5s"`
	// RunSilence ends a relayed run whose agent sent nothing (not even a
	// heartbeat comment) for this long, as a lost workspace.
	RunSilence time.Duration `env:"RUN_SILENCE_TIMEOUT" envDefault:"30s"`
	// HeaderTimeout and BodyTimeout bound reading a request's headers and
	// its body; MaxConnsPerClient caps one client address's connections
	// (0: no cap). Responses (streams) have no time limit.
	HeaderTimeout     time.Duration `env:"HTTP_HEADER_TIMEOUT" envDefault:"10s"`
	BodyTimeout       time.Duration `env:"HTTP_BODY_TIMEOUT" envDefault:"30s"`
	MaxConnsPerClient int           `env:"HTTP_MAX_CONNS_PER_CLIENT" envDefault:"256"`
	// PprofAddr, when set, serves /debug/pprof on its own listener (never
	// on the API's); empty (the default) serves no profiles.
	PprofAddr string `env:"PPROF_ADDR"`
}

// Auth holds the API keys. Values never reach a log line.
type Auth struct {
	// APIKeys is a comma-separated list of "tenant:key" or "key" entries.
	APIKeys Secret `env:"API_KEYS"`
	// APIKeysFile names a file with one "tenant:key" or "key" per line.
	APIKeysFile string `env:"API_KEYS_FILE"`
}

// Redis is the state store.
type Redis struct {
	URL      string `env:"REDIS_URL" envDefault:"redis://127.0.0.1:6379/0"`
	Password Secret `env:"REDIS_PASSWORD"`
	// KeyPrefix starts every key and channel; empty means the store's
	// default (store.DefaultPrefix, "ws:"), the one place it is set.
	KeyPrefix string `env:"REDIS_KEY_PREFIX"`
}

// Bus picks the message bus.
type Bus struct {
	Kind string `env:"BUS" envDefault:"gochannel"`
	// QueuePrefix is prepended to every queue name on SQS (e.g. "staging-").
	QueuePrefix       string        `env:"SQS_QUEUE_PREFIX"`
	VisibilityTimeout time.Duration `env:"SQS_VISIBILITY_TIMEOUT" envDefault:"120s"`
	MaxRetries        int           `env:"BUS_MAX_RETRIES" envDefault:"5"`
}

// Docker configures the Docker runtime (CONTAINER_MANAGER_TYPE=docker).
type Docker struct {
	Image           string        `env:"WORKSPACE_IMAGE" envDefault:"workspaced/workspace:dev"`
	SocketBasePath  string        `env:"WORKSPACE_SOCKET_BASE_PATH" envDefault:"/var/run/workspace-sockets"`
	SeccompProfile  string        `env:"WORKSPACE_SECCOMP_PROFILE"`
	AppArmorProfile string        `env:"WORKSPACE_APPARMOR_PROFILE"`
	CPUs            float64       `env:"WORKSPACE_CPUS" envDefault:"2"`
	MemoryMiB       int64         `env:"WORKSPACE_MEMORY_MIB" envDefault:"2048"`
	PidsLimit       int64         `env:"WORKSPACE_PIDS_LIMIT" envDefault:"256"`
	StopGrace       time.Duration `env:"WORKSPACE_STOP_GRACE" envDefault:"10s"`
	// StartConcurrency bounds container starts running on the engine at
	// once; the others wait in arrival order (0: unbounded).
	StartConcurrency int `env:"WORKSPACE_START_CONCURRENCY" envDefault:"4"`
}

// ECS configures the ECS runtime (CONTAINER_MANAGER_TYPE=ecs).
type ECS struct {
	Cluster          string       `env:"ECS_CLUSTER_NAME"`
	TaskDefinition   string       `env:"WORKSPACE_TASK_DEFINITION" envDefault:"workspace-agent"`
	Subnets          envconf.List `env:"ECS_WORKSPACE_SUBNETS"`
	SecurityGroups   envconf.List `env:"ECS_WORKSPACE_SECURITY_GROUP"`
	LaunchType       string       `env:"ECS_LAUNCH_TYPE"`
	CapacityProvider string       `env:"ECS_CAPACITY_PROVIDER"`
	StartedBy        string       `env:"ECS_STARTED_BY" envDefault:"workspaced"`
	// ProxyAdminKey derives each task's proxy admin token (HMAC of the
	// task's client token); every backend replica needs the same key.
	ProxyAdminKey Secret `env:"PROXY_ADMIN_KEY"`
}

// AWS is shared by every AWS client (ECS, SQS, S3). Credentials come from
// the SDK's default chain.
type AWS struct {
	Region string `env:"AWS_REGION" envDefault:"us-east-1"`
	// EndpointURL overrides every AWS endpoint (LocalStack, the test emulator).
	EndpointURL string `env:"AWS_ENDPOINT_URL"`
	// Per-service overrides (the SDK's names), winning over EndpointURL.
	ECSEndpointURL string `env:"AWS_ENDPOINT_URL_ECS"`
	SQSEndpointURL string `env:"AWS_ENDPOINT_URL_SQS"`
	S3EndpointURL  string `env:"AWS_ENDPOINT_URL_S3"`
}

// Endpoint returns the endpoint override for one service: its own, else
// the general one, else "" (AWS).
func (a AWS) Endpoint(service string) string {
	own := map[string]string{"ecs": a.ECSEndpointURL, "sqs": a.SQSEndpointURL, "s3": a.S3EndpointURL}[service]
	if own != "" {
		return own
	}
	return a.EndpointURL
}

// Pool configures the warm pool.
type Pool struct {
	MinSize int `env:"WARM_POOL_MIN_SIZE" envDefault:"0"`
	MaxSize int `env:"WARM_POOL_MAX_SIZE" envDefault:"0"`
	// MaxAge recycles available pool workspaces ready for longer (0: never).
	MaxAge time.Duration `env:"WARM_POOL_MAX_AGE" envDefault:"6h"`
	// StartRate caps the replenisher's starts per second.
	StartRate float64 `env:"WARM_POOL_START_RATE" envDefault:"2"`
	// CheckInterval is the replenisher's safety-net pass interval (it also
	// wakes on every pool change).
	CheckInterval time.Duration `env:"WARM_POOL_CHECK_INTERVAL" envDefault:"5s"`
}

// GC configures idle reaping and reconciliation.
type GC struct {
	IdleTTL           time.Duration `env:"WORKSPACE_IDLE_TTL" envDefault:"30m"`
	Interval          time.Duration `env:"GC_INTERVAL" envDefault:"1m"`
	OrphanGrace       time.Duration `env:"ORPHAN_GRACE_PERIOD" envDefault:"10m"`
	ReconcileInterval time.Duration `env:"RECONCILE_INTERVAL" envDefault:"2m"`
	DryRun            bool          `env:"GC_DRY_RUN" envDefault:"false"`
	// LockTTL is how long a conversation's provisioning lock outlives its
	// holder's last renewal (renewed every third of it while it works).
	LockTTL time.Duration `env:"PROVISION_LOCK_TTL" envDefault:"10s"`
	// StuckTimeout stops a workspace not ready this long after its start
	// (or claim) and fails its conversation.
	StuckTimeout time.Duration `env:"PROVISION_STUCK_TIMEOUT" envDefault:"5m"`
	// LeaseTTL is the leadership lease of the pool and gc loops, renewed
	// every third of it independently of the pass intervals.
	LeaseTTL time.Duration `env:"LEADER_LEASE_TTL" envDefault:"15s"`
}

// Files configures S3 persistence of workspace files.
type Files struct {
	Bucket string `env:"WORKSPACE_FILES_BUCKET"`
	// Prefix starts every key (several deployments can share a bucket).
	Prefix string `env:"WORKSPACE_FILES_PREFIX"`
	// Keep is how many snapshots of a conversation are kept (at least 2).
	Keep int `env:"WORKSPACE_FILES_KEEP" envDefault:"3"`
	// MaxDeltas is how many delta layers a saved tree may chain before a
	// save writes a fresh base (1 to 64).
	MaxDeltas int `env:"WORKSPACE_FILES_MAX_DELTAS" envDefault:"16"`
	// CheckpointInterval is how often a workspace is checkpointed while a
	// run goes on (it is also checkpointed after each run ends); 0
	// disables checkpoints.
	CheckpointInterval time.Duration `env:"FILES_CHECKPOINT_INTERVAL" envDefault:"5m"`
	// CheckpointTick is how often the checkpointer scans activity: a run's
	// end is checkpointed within one tick.
	CheckpointTick time.Duration `env:"FILES_CHECKPOINT_TICK" envDefault:"5s"`
}

// Log configures logging.
type Log struct {
	Level  string `env:"LOG_LEVEL" envDefault:"info"`
	Format string `env:"LOG_FORMAT" envDefault:"json"`
}

// Load parses the process environment.
func Load() (Config, error) { return LoadFrom(envconf.Environ(os.Environ())) }

// LoadFrom parses the given environment (tests pass a map) and validates it.
func LoadFrom(environ map[string]string) (Config, error) {
	cfg, err := envconf.Parse[Config](environ)
	if err != nil {
		return Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Validate reports every inconsistency at once.
func (c Config) Validate() error {
	errs := []error{c.Proxy.Validate()}
	switch c.Runtime {
	case RuntimeDocker:
	case RuntimeECS:
		if c.ECS.Cluster == "" {
			errs = append(errs, errors.New("ECS_CLUSTER_NAME is required when CONTAINER_MANAGER_TYPE=ecs"))
		}
		if len(c.ECS.Subnets) == 0 {
			errs = append(errs, errors.New("ECS_WORKSPACE_SUBNETS is required when CONTAINER_MANAGER_TYPE=ecs"))
		}
		if c.ECS.LaunchType != "" && c.ECS.CapacityProvider != "" {
			errs = append(errs, errors.New("ECS_LAUNCH_TYPE and ECS_CAPACITY_PROVIDER are mutually exclusive"))
		}
	default:
		errs = append(errs, fmt.Errorf("CONTAINER_MANAGER_TYPE %q: want docker or ecs", c.Runtime))
	}
	if !deploymentRE.MatchString(c.Deployment) {
		errs = append(errs, fmt.Errorf("WORKSPACED_DEPLOYMENT %q: want 1-32 of [a-z0-9-]", c.Deployment))
	}
	switch c.Bus.Kind {
	case BusGoChannel, BusSQS:
	default:
		errs = append(errs, fmt.Errorf("BUS %q: want gochannel or sqs", c.Bus.Kind))
	}
	if c.Pool.MaxSize != 0 && c.Pool.MaxSize < c.Pool.MinSize {
		errs = append(errs, fmt.Errorf("WARM_POOL_MAX_SIZE %d is below WARM_POOL_MIN_SIZE %d", c.Pool.MaxSize, c.Pool.MinSize))
	}
	if c.Pool.MinSize < 0 || c.Pool.MaxSize < 0 {
		errs = append(errs, errors.New("WARM_POOL_MIN_SIZE and WARM_POOL_MAX_SIZE must not be negative"))
	}
	if c.Pool.StartRate <= 0 {
		errs = append(errs, fmt.Errorf("WARM_POOL_START_RATE %v must be positive", c.Pool.StartRate))
	}
	if c.Pool.MaxAge < 0 {
		errs = append(errs, errors.New("WARM_POOL_MAX_AGE must not be negative"))
	}
	if c.Pool.CheckInterval <= 0 || c.GC.Interval <= 0 || c.GC.ReconcileInterval <= 0 || c.GC.StuckTimeout <= 0 || c.GC.LeaseTTL <= 0 || c.GC.LockTTL <= 0 {
		errs = append(errs, errors.New("WARM_POOL_CHECK_INTERVAL, GC_INTERVAL, RECONCILE_INTERVAL, PROVISION_STUCK_TIMEOUT, LEADER_LEASE_TTL and PROVISION_LOCK_TTL must be positive"))
	}
	if c.GC.IdleTTL < 0 || c.GC.OrphanGrace < 0 {
		errs = append(errs, errors.New("WORKSPACE_IDLE_TTL and ORPHAN_GRACE_PERIOD must not be negative"))
	}
	if c.Files.CheckpointInterval < 0 || c.Files.CheckpointTick <= 0 {
		errs = append(errs, errors.New("FILES_CHECKPOINT_INTERVAL must not be negative and FILES_CHECKPOINT_TICK must be positive"))
	}
	if c.Files.MaxDeltas < 1 || c.Files.MaxDeltas > 64 {
		errs = append(errs, fmt.Errorf("WORKSPACE_FILES_MAX_DELTAS %d: want 1 to 64", c.Files.MaxDeltas))
	}
	if c.Files.Keep < 2 {
		errs = append(errs, fmt.Errorf("WORKSPACE_FILES_KEEP %d: keep at least 2 snapshots", c.Files.Keep))
	}
	if c.Runs.DetachedTTL <= 0 || c.Runs.LogTTL <= 0 || c.Runs.RelayLeaseTTL <= 0 {
		errs = append(errs, errors.New("RUN_DETACHED_TTL, RUN_LOG_TTL and RUN_RELAY_LEASE_TTL must be positive"))
	}
	if c.Runs.LogMaxEvents <= 0 {
		errs = append(errs, errors.New("RUN_LOG_MAX_EVENTS must be positive"))
	}
	if c.HTTP.PprofAddr != "" && c.HTTP.PprofAddr == c.HTTP.Addr && !strings.HasSuffix(c.HTTP.Addr, ":0") {
		errs = append(errs, fmt.Errorf("PPROF_ADDR %q is HTTP_ADDR: profiles are served on a separate listener only", c.HTTP.PprofAddr))
	}
	if c.HTTP.MaxBodyBytes <= 0 {
		errs = append(errs, errors.New("MAX_REQUEST_BYTES must be positive"))
	}
	if c.Docker.StartConcurrency < 0 {
		errs = append(errs, errors.New("WORKSPACE_START_CONCURRENCY must not be negative"))
	}
	if c.HTTP.HealthTimeout <= 0 || c.HTTP.RunSilence <= 0 || c.HTTP.HealthCache < 0 {
		errs = append(errs, errors.New("WORKSPACE_HEALTH_TIMEOUT and RUN_SILENCE_TIMEOUT must be positive, WORKSPACE_HEALTH_CACHE not negative"))
	}
	if c.HTTP.HeaderTimeout <= 0 || c.HTTP.BodyTimeout <= 0 {
		errs = append(errs, errors.New("HTTP_HEADER_TIMEOUT and HTTP_BODY_TIMEOUT must be positive"))
	}
	if c.HTTP.MaxConnsPerClient < 0 {
		errs = append(errs, errors.New("HTTP_MAX_CONNS_PER_CLIENT must not be negative (0: no cap)"))
	}
	if _, err := ParseLevel(c.Log.Level); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

var deploymentRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// ParseLevel maps LOG_LEVEL to a slog level.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("LOG_LEVEL %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// Variables lists every environment variable Config reads, with its
// default, in declaration order (for docs and the docs test).
func Variables() ([]env.FieldParams, error) { return envconf.Variables[Config]() }

// Secret is a string that never prints (fmt, slog and JSON show
// "[redacted]"); the one secret type of every binary.
type Secret = envconf.Secret
