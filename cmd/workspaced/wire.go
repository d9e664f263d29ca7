package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/docker/docker/client"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/workspaced/workspaced/config"
	"github.com/workspaced/workspaced/events"
	"github.com/workspaced/workspaced/events/bus"
	"github.com/workspaced/workspaced/handlers"
	"github.com/workspaced/workspaced/proxy"
	"github.com/workspaced/workspaced/runtime/docker"
	"github.com/workspaced/workspaced/runtime/ecs"
	"github.com/workspaced/workspaced/workspace"
)

// newRedis connects to REDIS_URL (redis://, rediss://, unix://) and checks
// the connection.
func newRedis(ctx context.Context, c config.Redis) (*redis.Client, error) {
	opts, err := redis.ParseURL(c.URL)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	if p := c.Password.Reveal(); p != "" {
		opts.Password = p
	}
	rdb := redis.NewClient(opts)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("connect to redis %s: %w", redactURL(c.URL), err)
	}
	return rdb, nil
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable)"
	}
	return u.Redacted()
}

// loadAWS loads the SDK's default configuration (credentials chain) when
// the process talks to AWS (ECS runtime or SQS bus). Endpoint overrides are
// applied per client (config.AWS.Endpoint), not here.
func loadAWS(ctx context.Context, cfg config.Config) (aws.Config, error) {
	if cfg.Runtime != config.RuntimeECS && cfg.Bus.Kind != config.BusSQS && cfg.Files.Bucket == "" {
		return aws.Config{}, nil
	}
	c, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(cfg.AWS.Region))
	if err != nil {
		return aws.Config{}, fmt.Errorf("load aws config: %w", err)
	}
	return c, nil
}

// newBus builds the bus and checks (on SQS) that every queue this process
// uses exists.
func newBus(ctx context.Context, cfg config.Config, roles Roles, awsCfg aws.Config, log *slog.Logger) (*bus.Bus, error) {
	var pub, sub []string
	if roles.API || roles.Worker {
		pub = append(pub, events.TopicWorkspaceRequested, events.TopicWorkspaceReleased)
	} else if roles.GC {
		pub = append(pub, events.TopicWorkspaceReleased) // idle TTL releases
	}
	if roles.Worker {
		sub = append(sub, events.TopicWorkspaceRequested, events.TopicWorkspaceReleased)
	}
	if roles.Events {
		sub = append(sub, events.TopicTaskEvents)
		if cfg.Runtime == config.RuntimeDocker {
			pub = append(pub, events.TopicTaskEvents)
		}
	}
	b, err := bus.New(ctx, bus.Options{
		Kind:            bus.Kind(cfg.Bus.Kind),
		PublishTopics:   pub,
		SubscribeTopics: sub,
		DrainTimeout:    cfg.HTTP.ShutdownTimeout,
		Logger:          log,
		SQS: bus.SQSOptions{
			AWSConfig:         awsCfg,
			Endpoint:          cfg.AWS.Endpoint("sqs"),
			QueuePrefix:       cfg.Bus.QueuePrefix,
			VisibilityTimeout: cfg.Bus.VisibilityTimeout,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("build %s bus: %w", cfg.Bus.Kind, err)
	}
	return b, nil
}

// runtimeParts is the chosen runtime plus what the process must run and
// close for it.
type runtimeParts struct {
	rt         workspace.Runtime
	ping       func(context.Context) error
	background []func(context.Context) error
	close      func() error
}

// newRuntime is the one switch between Docker and ECS
// (CONTAINER_MANAGER_TYPE).
func newRuntime(ctx context.Context, cfg config.Config, awsCfg aws.Config, reg prometheus.Registerer, log *slog.Logger, b *bus.Bus, deps appDeps) (*runtimeParts, error) {
	switch cfg.Runtime {
	case config.RuntimeECS:
		return newECSRuntime(cfg, awsCfg, reg, log)
	default:
		return newDockerRuntime(ctx, cfg, awsCfg, reg, log, b, deps)
	}
}

func newECSRuntime(cfg config.Config, awsCfg aws.Config, reg prometheus.Registerer, log *slog.Logger) (*runtimeParts, error) {
	opts := ecs.Options{
		Cluster:        cfg.ECS.Cluster,
		TaskDefinition: cfg.ECS.TaskDefinition,
		Subnets:        cfg.ECS.Subnets,
		SecurityGroups: cfg.ECS.SecurityGroups,
		LaunchType:     cfg.ECS.LaunchType,
		StartedBy:      cfg.ECS.StartedBy,
		Endpoint:       cfg.AWS.Endpoint("ecs"),
		ProxyAdminKey:  []byte(cfg.ECS.ProxyAdminKey.Reveal()),
		Registerer:     reg,
		Logger:         log,
	}
	if cfg.ECS.CapacityProvider != "" {
		opts.CapacityProviders = []ecs.CapacityProvider{{Name: cfg.ECS.CapacityProvider, Weight: 1}}
	}
	rt, err := ecs.New(awsCfg, opts)
	if err != nil {
		return nil, fmt.Errorf("build ecs runtime: %w", err)
	}
	return &runtimeParts{rt: rt, ping: rt.Ping, close: rt.Close}, nil
}

// newDockerRuntime builds the Docker runtime with the in-process
// credential proxy (one Unix socket per workspace) and the engine event
// watcher that feeds the task-events topic.
func newDockerRuntime(ctx context.Context, cfg config.Config, awsCfg aws.Config, reg prometheus.Registerer, log *slog.Logger, b *bus.Bus, deps appDeps) (*runtimeParts, error) {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	// Negotiate now: the client negotiates lazily on its first request and
	// its event stream reads the version unsynchronised, so the watcher and
	// the start-up reconcile racing on a fresh client is a data race.
	cli.NegotiateAPIVersion(ctx)
	px, err := newHostProxy(ctx, cfg, reg, log, deps.proxyOptions)
	if err != nil {
		_ = cli.Close()
		return nil, err
	}
	var seccomp []byte
	if cfg.Docker.SeccompProfile != "" {
		if seccomp, err = os.ReadFile(cfg.Docker.SeccompProfile); err != nil {
			_ = cli.Close()
			return nil, fmt.Errorf("WORKSPACE_SECCOMP_PROFILE: %w", err)
		}
	}
	rt, err := docker.New(cli, docker.Options{
		Image:            cfg.Docker.Image,
		SocketBasePath:   cfg.Docker.SocketBasePath,
		SeccompProfile:   seccomp,
		AppArmorProfile:  cfg.Docker.AppArmorProfile,
		NanoCPUs:         int64(cfg.Docker.CPUs * 1e9),
		MemoryBytes:      cfg.Docker.MemoryMiB << 20,
		PidsLimit:        cfg.Docker.PidsLimit,
		StopGrace:        cfg.Docker.StopGrace,
		StartConcurrency: cfg.Docker.StartConcurrency,
		Proxy:            px,
		Labels:           map[string]string{deploymentLabel: cfg.Deployment},
		Logger:           log,
		Fault:            deps.fault,
	})
	if err != nil {
		_ = cli.Close()
		return nil, fmt.Errorf("build docker runtime: %w", err)
	}
	parts := &runtimeParts{
		rt:   rt,
		ping: func(ctx context.Context) error { _, err := cli.Ping(ctx); return err },
		close: func() error {
			rt.Close() // start attempts in flight finish before the client closes
			return cli.Close()
		},
		background: []func(context.Context) error{px.Run},
	}
	if b != nil && rt.Capabilities().LocalEvents {
		w := docker.NewWatcher(cli, docker.WatcherOptions{Labels: map[string]string{deploymentLabel: cfg.Deployment}, Logger: log}, b.Commands())
		if err := reg.Register(w); err != nil {
			_ = cli.Close()
			return nil, fmt.Errorf("register docker watcher metrics: %w", err)
		}
		parts.background = append(parts.background, w.Run)
	}
	return parts, nil
}

// deploymentLabel scopes a Docker host's workspaces to one deployment
// (WORKSPACED_DEPLOYMENT).
const deploymentLabel = "workspaced.deployment"

// newHostProxy builds the in-process credential proxy of Docker mode from
// hostProxyOptions.
func newHostProxy(ctx context.Context, cfg config.Config, reg prometheus.Registerer, log *slog.Logger, hook func(*proxy.Options)) (*proxy.Proxy, error) {
	opts := hostProxyOptions(cfg)
	// The proxy signs with workspaced's own AWS credentials; without any,
	// Bedrock requests get 503 (fail closed) and everything else works.
	if awsCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(opts.Bedrock.Region)); err == nil && awsCfg.Credentials != nil {
		opts.Bedrock.Credentials = awsCfg.Credentials
	}
	opts.Logger = log
	m, err := proxy.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	opts.Metrics = m
	if hook != nil {
		hook(&opts) // tests: a fake resolver and dialer, a test CA
	}
	return proxy.New(opts)
}

// hostProxyOptions is the policy of the in-process proxy: the same
// function of the same variables as the ECS sidecar's
// (proxy.OptionsFromConfig; TestSameEnvironmentSameProxy), with
// workspaced's AWS_REGION as the Bedrock fallback region.
func hostProxyOptions(cfg config.Config) proxy.Options {
	return proxy.OptionsFromConfig(cfg.Proxy, cfg.AWS.Region)
}

// loadKeys reads API_KEYS and API_KEYS_FILE.
func loadKeys(c config.Auth) (*handlers.Keys, error) {
	list := c.APIKeys.Reveal()
	if c.APIKeysFile == "" {
		k, err := handlers.ParseKeys(list, nil)
		if err != nil {
			return nil, fmt.Errorf("API_KEYS: %w", err)
		}
		return k, nil
	}
	f, err := os.Open(c.APIKeysFile)
	if err != nil {
		return nil, fmt.Errorf("API_KEYS_FILE: %w", err)
	}
	defer f.Close()
	k, err := handlers.ParseKeys(list, f)
	if err != nil {
		return nil, fmt.Errorf("API keys: %w", err)
	}
	return k, nil
}
