package handlers

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/workspaced/workspaced/events"
	"github.com/workspaced/workspaced/store"
)

// Store is everything the API uses of the state store: parts of three of
// its views.
type Store interface {
	Conversations
	Streams
	Workspaces
	RunStore
}

// Conversations is what the API reads and changes of conversations (the
// store's Conversations view; its Watch returns a *store.Watch, which the
// wiring hands over as a Watcher).
type Conversations interface {
	ClaimConversation(ctx context.Context, cid, owner, tenant string) (store.Conversation, error)
	Conversation(ctx context.Context, cid string) (store.Conversation, error)
	MarkQueued(ctx context.Context, cid, requestID string, requestedAt time.Time) (store.Conversation, error)
	// Watch subscribes to cid's changes; the caller closes the Watcher.
	Watch(ctx context.Context, cid string) (Watcher, error)
	SetMCPRules(ctx context.Context, cid string, rulesJSON []byte) (digest string, changed bool, err error)
}

// Watcher follows one conversation's changes. The first Next returns the
// state as of after subscribing, each later one the next newer state. Not
// safe for concurrent use.
type Watcher interface {
	Next(ctx context.Context) (store.Conversation, error)
	Close() error
}

// Streams records the API's open streams as workspace activity, so the
// idle GC spares a workspace while a client streams (the store's Activity
// view).
type Streams interface {
	StreamStarted(ctx context.Context, wid, streamID string, ttl time.Duration) (bool, error)
	StreamEnded(ctx context.Context, wid, streamID string) error
}

// Workspaces reads workspace records, and records a hung one as stopped
// (the store's Events view).
type Workspaces interface {
	Workspace(ctx context.Context, wid string) (store.Workspace, error)
	MarkStopped(ctx context.Context, wid, reason string) (store.ApplyResult, error)
}

// Transports gives an HTTP transport to a workspace's agent endpoint; the
// runtime (Docker or ECS) satisfies it.
type Transports interface {
	Transport(endpoint string) (http.RoundTripper, error)
}

// PoolInventory reports the warm pool for GET /v1/pool. Optional.
type PoolInventory interface {
	Inventory(ctx context.Context) (any, error)
}

// Commands publishes the API's commands; *bus.Commands satisfies it. The
// correlation ID comes from ctx (the request ID).
type Commands interface {
	PublishRequested(ctx context.Context, cmd events.WorkspaceRequested) error
	PublishReleased(ctx context.Context, cmd events.WorkspaceReleased) error
}

// Check is one readiness dependency (Redis, bus, runtime).
type Check func(ctx context.Context) error

// Options configure a Server. Store, Commands, Transports and Keys are
// required.
type Options struct {
	Store      Store
	Commands   Commands
	Transports Transports
	Keys       *Keys
	Pool       PoolInventory
	// Rules applies changed MCP rules to a ready workspace before a run;
	// nil skips that (rules then reach only new workspaces).
	Rules RulesSync
	// MCPGateway is the proxy's address as the workspace sees it, the base
	// of rewritten MCP server URLs (default DefaultMCPGateway).
	MCPGateway string
	// Checks are run by GET /health/ready, each with CheckTimeout.
	Checks       map[string]Check
	CheckTimeout time.Duration
	// ProvisionTimeout bounds the wait for a ready workspace (default 90s).
	ProvisionTimeout time.Duration
	// Heartbeat is the interval of ": ping" comments (default 15s).
	Heartbeat time.Duration
	// MaxBodyBytes caps request bodies (default 1 MiB).
	MaxBodyBytes int64
	// HeaderTimeout bounds reading a request's headers (default 10s),
	// BodyTimeout reading its body once a handler wants it (default 30s).
	HeaderTimeout time.Duration
	BodyTimeout   time.Duration
	// MaxConnsPerClient caps the connections one client address holds
	// (Listener); 0 means no cap.
	MaxConnsPerClient int
	// StreamLease is how long an open stream counts as activity without a
	// renewal; renewed every heartbeat (default 4 heartbeats).
	StreamLease time.Duration
	// RunLogMaxEvents caps a run's event log in Redis (default 10000);
	// older events are trimmed.
	RunLogMaxEvents int64
	// RunLogTTL is how long a run's record and log are kept after it
	// ended (default 1h).
	RunLogTTL time.Duration
	// RunDetachedTTL is how long a run goes on without any client stream
	// open before it is cancelled (default 10m).
	RunDetachedTTL time.Duration
	// RunLeaseTTL is the relay lease of a run; the relayer renews it every
	// third of it, and a run whose relayer died is taken over within about
	// one TTL (default 10s).
	RunLeaseTTL time.Duration
	// RetryHint is the reconnection time sent (SSE "retry:") when a
	// stream ends because its relay moves to another replica (default 1s).
	RetryHint time.Duration
	// ReplicaID names this replica as a run relayer (default NewID()).
	ReplicaID string
	Logger    *slog.Logger
	// HealthTimeout bounds the agent health check before a relay to a
	// bound workspace (default 2s); HealthCache is how long a success
	// spares the next check (default 5s; 0 checks every time).
	HealthTimeout time.Duration
	HealthCache   time.Duration
	// RunSilence ends a run whose agent sent nothing for this long as a
	// lost workspace (default 30s; the agent's heartbeat comments count).
	RunSilence time.Duration
	// RequestRetry is how often a request waiting for a workspace
	// publishes workspace.requested again, so a provisioning whose owner
	// died is taken over (default 5s; duplicates are dropped).
	RequestRetry time.Duration
	// Registry receives the API's metrics and is served on /metrics.
	Registry *prometheus.Registry
	// Now and NewID are the clock and ID source (defaults time.Now, UUIDv4);
	// NewID also makes request IDs for requests without a usable
	// X-Request-Id.
	Now   func() time.Time
	NewID func() string
}

// Server is the HTTP API. Create it with New; serve Handler(). Safe for
// concurrent use.
type Server struct {
	opts    Options
	log     *slog.Logger
	echo    *echo.Echo
	metrics *metrics
	runs    runQueue
	replica string

	// bg is the context of run drivers: detached from requests, cancelled
	// by Wait after the drivers were handed off or aborted.
	bg       context.Context
	bgCancel context.CancelFunc
	driverWG sync.WaitGroup
	health   healthCache

	mu       sync.Mutex
	drivers  map[string]*runDriver // runs this replica relays, by id
	draining bool
	drain    chan struct{} // closed by Drain: follower streams end with a retry hint
	inflight int           // API requests being served (admit)
	idle     chan struct{} // closed and replaced when inflight drops to 0 while draining
	abort    chan struct{} // closed by Abort: open streams end now
	aborted  bool
}

// New builds the API.
func New(opts Options) (*Server, error) {
	if opts.Store == nil || opts.Commands == nil || opts.Transports == nil || opts.Keys == nil {
		return nil, errors.New("handlers: Store, Commands, Transports and Keys are required")
	}
	if opts.ProvisionTimeout <= 0 {
		opts.ProvisionTimeout = 90 * time.Second
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = 15 * time.Second
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	if opts.HeaderTimeout <= 0 {
		opts.HeaderTimeout = 10 * time.Second
	}
	if opts.BodyTimeout <= 0 {
		opts.BodyTimeout = 30 * time.Second
	}
	if opts.StreamLease <= 0 {
		opts.StreamLease = 4 * opts.Heartbeat
	}
	if opts.HealthTimeout <= 0 {
		opts.HealthTimeout = 2 * time.Second
	}
	if opts.HealthCache < 0 {
		opts.HealthCache = 0
	}
	if opts.RunSilence <= 0 {
		opts.RunSilence = 30 * time.Second
	}
	if opts.RequestRetry <= 0 {
		opts.RequestRetry = 5 * time.Second
	}
	if opts.MCPGateway == "" {
		opts.MCPGateway = DefaultMCPGateway
	}
	if opts.CheckTimeout <= 0 {
		opts.CheckTimeout = 2 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.NewID == nil {
		opts.NewID = uuid.NewString
	}
	if opts.RunLogMaxEvents <= 0 {
		opts.RunLogMaxEvents = 10000
	}
	if opts.RunLogTTL <= 0 {
		opts.RunLogTTL = time.Hour
	}
	if opts.RunDetachedTTL <= 0 {
		opts.RunDetachedTTL = 10 * time.Minute
	}
	if opts.RunLeaseTTL <= 0 {
		opts.RunLeaseTTL = 10 * time.Second
	}
	if opts.RetryHint <= 0 {
		opts.RetryHint = time.Second
	}
	if opts.ReplicaID == "" {
		opts.ReplicaID = opts.NewID()
	}
	m, err := newMetrics(opts.Registry)
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, log: opts.Logger.With("component", "api"), metrics: m, replica: opts.ReplicaID,
		drivers: map[string]*runDriver{}, drain: make(chan struct{}), abort: make(chan struct{}), idle: make(chan struct{})}
	s.bg, s.bgCancel = context.WithCancel(context.Background())
	s.echo = s.routes()
	return s, nil
}

// Handler is the API's http.Handler.
func (s *Server) Handler() http.Handler { return s.echo }

func (s *Server) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = errorHandler(s.log)
	e.Use(s.requestID(), s.observe)
	e.GET("/health/live", s.live)
	e.GET("/health/ready", s.ready)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(s.opts.Registry, promhttp.HandlerOpts{Registry: s.opts.Registry})))
	// The key check is per route, not a /v1 group middleware: a group's
	// catch-all would answer a wrong method on a known path 404 instead
	// of Echo's 405 with Allow. Bodies are read only after the key check.
	api := []echo.MiddlewareFunc{s.admit, requireKey(s.opts.Keys)}
	withBody := append(api[:len(api):len(api)], s.readBody)
	e.POST("/v1/conversations/:id/execute", s.execute, withBody...)
	e.POST("/v1/conversations/:id/selftest", s.selfTest, withBody...)
	e.GET("/v1/conversations/:id", s.getConversation, api...)
	e.GET("/v1/conversations/:id/runs", s.listRuns, api...)
	e.GET("/v1/conversations/:id/runs/:run", s.getRun, api...)
	e.GET("/v1/conversations/:id/runs/:run/events", s.followRun, api...)
	e.POST("/v1/conversations/:id/runs/:run/cancel", s.cancelRunAPI, withBody...)
	e.DELETE("/v1/conversations/:id", s.deleteConversation, api...)
	e.GET("/v1/pool", s.pool, api...)
	return e
}

// admit counts the API requests in flight and, while the server drains,
// refuses new ones with 503 shutting_down (Retry-After) instead of leaving
// them to a closed listener.
func (s *Server) admit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		s.mu.Lock()
		if s.draining {
			s.mu.Unlock()
			return errDraining
		}
		s.inflight++
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			if s.inflight--; s.inflight == 0 && s.draining {
				close(s.idle)
				s.idle = make(chan struct{})
			}
			s.mu.Unlock()
		}()
		return next(c)
	}
}

// Drained returns a channel closed once the server drains (Drain or Abort)
// and no API request is in flight any more: the moment to close the
// listener. Health and metrics requests do not count.
func (s *Server) Drained() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining && s.inflight == 0 {
		done := make(chan struct{})
		close(done)
		return done
	}
	return s.idle
}

// Drain marks the server not ready (GET /health/ready answers 503) so load
// balancers stop sending new requests, refuses new API requests with 503
// (admit), and hands the runs it relays over:
// their relay stops (the runs go on in their agents; a replica that stays
// takes each over within a lease TTL, or at once when a client follows
// it there) and their client streams end with an SSE retry hint, as do
// the follower streams. Runs still waiting for a workspace go on here and
// are handed over once started. Idempotent.
func (s *Server) Drain() {
	s.mu.Lock()
	if !s.draining {
		s.draining = true
		close(s.drain)
		if s.inflight == 0 {
			close(s.idle)
			s.idle = make(chan struct{})
		}
	}
	ds := make([]*runDriver, 0, len(s.drivers))
	for _, d := range s.drivers {
		ds = append(ds, d)
	}
	s.mu.Unlock()
	for _, d := range ds {
		d.mu.Lock()
		started := d.started
		d.mu.Unlock()
		if started {
			d.cancel(errHandoff)
		}
	}
}

// Abort ends the streams still open: runs still waiting for a workspace
// end with a final "error" event (shutting_down); relayed runs are handed
// over as by Drain. Idempotent.
func (s *Server) Abort() {
	s.Drain()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.aborted {
		s.aborted = true
		close(s.abort)
	}
}

// Wait returns once every run driver of this replica is gone (call after
// Abort), or when ctx ends.
func (s *Server) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { s.driverWG.Wait(); close(done) }()
	select {
	case <-done:
		s.bgCancel()
		return nil
	case <-ctx.Done():
		s.bgCancel()
		return ctx.Err()
	}
}

func (s *Server) isDraining() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.draining
}
