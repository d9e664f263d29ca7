package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/workspaced/workspaced/config"
	"github.com/workspaced/workspaced/events"
	"github.com/workspaced/workspaced/events/bus"
	"github.com/workspaced/workspaced/handlers"
	"github.com/workspaced/workspaced/proxy"
	"github.com/workspaced/workspaced/store"
	"github.com/workspaced/workspaced/workers"
)

// App is one workspaced process: the parts its roles need, built in
// dependency order and closed in reverse.
type App struct {
	cfg   config.Config
	roles Roles
	log   *slog.Logger
	reg   *prometheus.Registry

	store   *store.Store
	bus     *bus.Bus
	runtime *runtimeParts

	api     *handlers.Server
	http    *http.Server
	ln      net.Listener
	pprof   *pprofServer // nil unless PPROF_ADDR is set
	routers []*bus.Router
	// loops are the background loops of the pool and gc roles; startup
	// runs once, in order, before anything is served.
	loops   []func(context.Context) error
	startup []func(context.Context)
	pers    *workers.Personaliser
	// fault is nil except in fault-injection builds (faults_on.go).
	fault func(point string)
	saver workers.Saver // nil: files are not saved (no bucket)

	closers []func() error // in creation order; Close runs them backwards
}

// NewApp builds every part the roles need. On error, what was built is
// closed again.
func NewApp(ctx context.Context, cfg config.Config, roles Roles, log *slog.Logger) (*App, error) {
	return newApp(ctx, cfg, roles, log, appDeps{})
}

// appDeps are dependencies NewApp otherwise builds from the process
// environment. Tests set them: parallel tests must not mutate the
// environment the SDK's default configuration reads.
type appDeps struct {
	// awsConfig, when set, replaces the SDK's default configuration
	// (region and credentials chain) for every AWS client.
	awsConfig *aws.Config
	// proxyOptions, when set, adjusts the in-process proxy's options
	// (Docker mode): tests route its upstream dials to local servers.
	proxyOptions func(*proxy.Options)
	// fault is set by newApp from faultHook (crash points of
	// fault-injection builds); nil otherwise.
	fault func(point string)
}

func newApp(ctx context.Context, cfg config.Config, roles Roles, log *slog.Logger, deps appDeps) (app *App, err error) {
	a := &App{cfg: cfg, roles: roles, log: log, reg: prometheus.NewRegistry(), fault: faultHook()}
	defer func() {
		if err != nil {
			a.close()
		}
	}()
	for _, c := range []prometheus.Collector{collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := a.reg.Register(c); err != nil {
			return nil, fmt.Errorf("register process metrics: %w", err)
		}
	}

	rdb, err := newRedis(ctx, cfg.Redis)
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, rdb.Close)
	a.store = store.New(rdb, store.Options{Prefix: cfg.Redis.KeyPrefix})

	var awsCfg aws.Config
	if deps.awsConfig != nil {
		awsCfg = *deps.awsConfig
	} else if awsCfg, err = loadAWS(ctx, cfg); err != nil {
		return nil, err
	}
	if a.bus, err = newBus(ctx, cfg, roles, awsCfg, log); err != nil {
		return nil, err
	}
	a.closers = append(a.closers, a.bus.Close)

	var watchBus *bus.Bus
	if roles.Events {
		watchBus = a.bus // the Docker watcher feeds task events to this process's subscriber
	}
	deps.fault = a.fault
	if a.runtime, err = newRuntime(ctx, cfg, awsCfg, a.reg, log, watchBus, deps); err != nil {
		return nil, err
	}
	a.closers = append(a.closers, a.runtime.close)

	busMetrics, err := bus.NewMetrics(a.reg)
	if err != nil {
		return nil, fmt.Errorf("register bus metrics: %w", err)
	}
	workerMetrics, err := workers.NewMetrics(a.reg)
	if err != nil {
		return nil, fmt.Errorf("register worker metrics: %w", err)
	}
	fs, err := newFiles(cfg, awsCfg, a.runtime.rt, a.reg, log)
	if err != nil {
		return nil, err
	}
	var restorer workers.Restorer
	if fs != nil {
		a.saver, restorer = fs, fs
	}
	a.pers = a.newPersonaliser(restorer)
	rec := a.newReconciler(workerMetrics, a.pers)
	a.addRecover()
	if roles.Pool {
		a.addPool(workerMetrics)
	}
	if roles.GC {
		a.addGC(workerMetrics, rec)
	}
	if roles.Worker {
		if err := a.addWorkers(workerMetrics, busMetrics); err != nil {
			return nil, err
		}
		a.addCheckpoints(workerMetrics)
	}
	if roles.Events {
		if err := a.addStateSubscriber(workerMetrics, busMetrics); err != nil {
			return nil, err
		}
	}
	if roles.API {
		if err := a.addAPI(); err != nil {
			return nil, err
		}
	}
	if err := a.addPprof(); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *App) routerOptions(m *bus.Metrics) bus.RouterOptions {
	return bus.RouterOptions{Retry: bus.RetryOptions{MaxRetries: a.cfg.Bus.MaxRetries}, Metrics: m, Logger: a.log}
}

func (a *App) addWorkers(wm *workers.Metrics, bm *bus.Metrics) error {
	// The provisioner adopts a workspace it finds already running (Redis
	// lost, or a process died mid-provisioning) through the same
	// finishing step as the state subscriber.
	ready := a.newStateSubscriber(wm)
	prov := workers.NewProvisioner(a.runtime.rt, a.store, wm, workers.ProvisionerOptions{
		Logger: a.log, Pool: poolEnabled(a.cfg.Pool), Personaliser: a.pers,
		LockTTL: a.cfg.GC.LockTTL, Ready: ready, Fault: a.fault,
	})
	opts := a.routerOptions(bm)
	// When the router gives up on a workspace.requested, its waiters are
	// told at once instead of timing out.
	opts.OnGiveUp = prov.GaveUp
	r, err := bus.NewRouter(a.bus, opts)
	if err != nil {
		return fmt.Errorf("build worker router: %w", err)
	}
	rel := workers.NewReleaser(a.runtime.rt, a.store, workers.ReleaserOptions{Logger: a.log, Saver: a.saver})
	r.AddConsumerHandler("workspace-requested", events.TopicWorkspaceRequested, bus.Handle(events.DecodeRequested, prov.Provision))
	r.AddConsumerHandler("workspace-released", events.TopicWorkspaceReleased, bus.Handle(events.DecodeReleased, rel.Release))
	a.routers = append(a.routers, r)
	return nil
}

func (a *App) addStateSubscriber(wm *workers.Metrics, bm *bus.Metrics) error {
	r, err := bus.NewRouter(a.bus, a.routerOptions(bm))
	if err != nil {
		return fmt.Errorf("build events router: %w", err)
	}
	sub := a.newStateSubscriber(wm)
	r.AddConsumerHandler("task-state", events.TopicTaskEvents, bus.Handle(events.DecodeTaskStateChange, sub.Apply))
	a.routers = append(a.routers, r)
	return nil
}

// newStateSubscriber builds the step that makes a healthy workspace ready
// (task-state events, on-demand adoption, the reconciler).
func (a *App) newStateSubscriber(wm *workers.Metrics) *workers.StateSubscriber {
	return workers.NewStateSubscriber(a.runtime.rt, a.store, wm, workers.StateOptions{
		Logger: a.log, Personaliser: a.pers, LockTTL: a.cfg.GC.LockTTL, Fault: a.fault,
	})
}

func (a *App) addAPI() error {
	keys, err := loadKeys(a.cfg.Auth)
	if err != nil {
		return err
	}
	if keys.Len() == 0 {
		a.log.Warn("no API keys configured: every /v1 request will get 401 (set API_KEYS or API_KEYS_FILE)")
	}
	api, err := handlers.New(handlers.Options{
		Store:      apiStore{a.store},
		Commands:   a.bus.Commands(),
		Transports: a.runtime.rt,
		Keys:       keys,
		Pool:       poolView{a.store.Pool, a.cfg.Pool},
		Rules:      a.pers,
		Checks: map[string]handlers.Check{
			"redis":   a.store.Ping,
			"runtime": a.runtime.ping,
			"bus":     a.busReady,
		},
		ProvisionTimeout:  a.cfg.HTTP.ProvisionTimeout,
		Heartbeat:         a.cfg.HTTP.Heartbeat,
		MaxBodyBytes:      a.cfg.HTTP.MaxBodyBytes,
		HeaderTimeout:     a.cfg.HTTP.HeaderTimeout,
		BodyTimeout:       a.cfg.HTTP.BodyTimeout,
		MaxConnsPerClient: a.cfg.HTTP.MaxConnsPerClient,
		RunLogMaxEvents:   a.cfg.Runs.LogMaxEvents,
		RunLogTTL:         a.cfg.Runs.LogTTL,
		RunDetachedTTL:    a.cfg.Runs.DetachedTTL,
		RunLeaseTTL:       a.cfg.Runs.RelayLeaseTTL,
		HealthTimeout:     a.cfg.HTTP.HealthTimeout,
		HealthCache:       a.cfg.HTTP.HealthCache,
		RunSilence:        a.cfg.HTTP.RunSilence,
		RequestRetry:      a.cfg.GC.LockTTL / 2,
		Logger:            a.log,
		Registry:          a.reg,
	})
	if err != nil {
		return fmt.Errorf("build api: %w", err)
	}
	a.api = api
	ln, err := net.Listen("tcp", a.cfg.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.cfg.HTTP.Addr, err)
	}
	a.ln = api.Listener(ln)
	a.http = api.HTTPServer()
	return nil
}

// busReady reports whether every router of this process is running.
func (a *App) busReady(context.Context) error {
	for _, r := range a.routers {
		select {
		case <-r.Running():
		default:
			return errors.New("consumers not running yet")
		}
	}
	return nil
}

// Addr is the API's listen address (useful with HTTP_ADDR=127.0.0.1:0).
func (a *App) Addr() net.Addr {
	if a.ln == nil {
		return nil
	}
	return a.ln.Addr()
}

// Run serves until ctx ends, then shuts down: mark not ready, stop taking
// requests, let open streams finish until SHUTDOWN_TIMEOUT (then end them
// with a final event), drain the consumers, close dependencies in reverse
// order. It returns nil after a clean shutdown.
func (a *App) Run(ctx context.Context) error {
	defer a.close()
	for _, f := range a.startup {
		f(ctx)
	}
	// Consumers outlive the API during shutdown: streams still waiting for
	// a workspace need the state subscriber until they end.
	consumeCtx, stopConsumers := context.WithCancel(context.WithoutCancel(ctx))
	defer stopConsumers()
	g, gctx := errgroup.WithContext(ctx)
	for _, r := range a.routers {
		g.Go(func() error {
			err := r.Run(consumeCtx)
			if gctx.Err() == nil && err != nil {
				return err
			}
			return nil
		})
	}
	for _, bg := range a.runtime.background {
		g.Go(func() error { return bg(consumeCtx) })
	}
	for _, loop := range a.loops {
		g.Go(func() error { return loop(consumeCtx) })
	}
	if a.api != nil {
		// Takes over runs whose relaying replica is gone; stops with the
		// API (a draining replica takes nothing over).
		g.Go(func() error { return a.api.Run(gctx) })
	}
	if a.http != nil {
		g.Go(func() error {
			if err := a.http.Serve(a.ln); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("serve http: %w", err)
			}
			return nil
		})
	}
	g.Go(func() error {
		<-gctx.Done()
		var err error
		if a.http != nil {
			err = a.shutdownHTTP()
		}
		a.log.Info("stopping consumers")
		stopConsumers()
		return err
	})
	addr := ""
	if a.ln != nil {
		addr = a.ln.Addr().String()
	}
	a.log.Info("workspaced started", "addr", addr, "runtime", a.cfg.Runtime, "bus", a.cfg.Bus.Kind,
		"api", a.roles.API, "worker", a.roles.Worker, "events", a.roles.Events, "pool", a.roles.Pool, "gc", a.roles.GC)
	err := g.Wait()
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// shutdownHTTP drains the API within SHUTDOWN_TIMEOUT: the runs it relays
// are handed over at once (they go on in their workspaces; another
// replica, or this one's successor, takes each over) and their streams end
// with an SSE retry hint. The listener stays open while requests are in
// flight: /health/ready answers 503 and new API requests get 503
// shutting_down (never "connection refused") until the open ones end.
// Streams of runs still waiting for a workspace shortly before the
// deadline are ended with a final "error" event.
func (a *App) shutdownHTTP() error {
	a.api.Drain() // first: the log line below means "draining" (tests wait for it)
	a.log.Info("shutting down api", "timeout", a.cfg.HTTP.ShutdownTimeout.String())
	timeout := a.cfg.HTTP.ShutdownTimeout
	margin := min(timeout/5, 2*time.Second)
	abort := time.AfterFunc(timeout-margin, a.api.Abort)
	defer abort.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	select {
	case <-a.api.Drained():
	case <-ctx.Done():
	}
	err := a.http.Shutdown(ctx)
	if err != nil {
		_ = a.http.Close()
		err = fmt.Errorf("drain http: %w", err)
	}
	a.api.Abort()
	if werr := a.api.Wait(ctx); werr != nil && err == nil {
		err = fmt.Errorf("hand runs over: %w", werr)
	}
	return err
}

// close releases dependencies in reverse order of creation.
func (a *App) close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		if err := a.closers[i](); err != nil {
			a.log.Warn("close failed", "err", err)
		}
	}
	a.closers = nil
}

// apiStore is the store as the API uses it: Watch answers handlers.Watcher
// (the store's returns its concrete *store.Watch).
type apiStore struct{ *store.Store }

func (s apiStore) Watch(ctx context.Context, cid string) (handlers.Watcher, error) {
	w, err := s.Store.Watch(ctx, cid)
	if err != nil {
		return nil, err
	}
	return w, nil
}
