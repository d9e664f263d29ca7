// Command credential-proxy is the workspace's credential-injection sidecar
// (ECS): it listens on PROXY_LISTEN_HOST:PROXY_LISTEN_PORT, signs Bedrock
// calls with the AWS credentials in its own environment, injects MCP
// headers, forwards the domain allowlist, and optionally serves the admin
// API the backend uses to set MCP rules on a claimed warm-pool task.
// Configuration is environment only: proxyconfig.Sidecar, whose policy
// part is the very proxyconfig.Config workspaced reads for its in-process
// proxy (docs/configuration.md lists every variable). main only wires.
//
// "credential-proxy healthcheck" probes /health (for the container health
// check: the image has no shell or curl).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	_ "golang.org/x/crypto/x509roots/fallback" // CA roots for the FROM scratch image (used only when the system has none)
	"golang.org/x/sync/errgroup"

	"github.com/workspaced/workspaced/config/envconf"
	"github.com/workspaced/workspaced/proxy"
	"github.com/workspaced/workspaced/proxy/proxyconfig"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		os.Exit(healthcheck(envconf.Environ(os.Environ())))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, envconf.Environ(os.Environ()), os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "credential-proxy:", err)
		os.Exit(1)
	}
}

// run starts the proxy and blocks until ctx ends, then drains. ready, if
// not nil, receives the bound proxy address once listening (tests).
func run(ctx context.Context, environ map[string]string, logOut io.Writer, ready chan<- string) error {
	cfg, err := parseConfig(environ)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: cfg.LogLevel}))
	reg := prometheus.NewRegistry()
	if err := registerProcessMetrics(reg); err != nil {
		return err
	}
	opts := cfg.Options
	opts.Logger = log
	if opts.Metrics, err = proxy.NewMetrics(reg); err != nil {
		return err
	}
	if cfg.BedrockEnabled {
		awsCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(opts.Bedrock.Region))
		if err != nil {
			return fmt.Errorf("load AWS configuration: %w", err)
		}
		opts.Bedrock.Credentials = awsCfg.Credentials // cached by LoadDefaultConfig
	}
	p, err := proxy.New(opts)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.ListenAddr())
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.ListenAddr(), err)
	}
	var adminLn, metricsLn net.Listener
	if cfg.AdminListen != "" {
		if adminLn, err = net.Listen("tcp", cfg.AdminListen); err != nil {
			_ = ln.Close()
			return fmt.Errorf("listen admin %s: %w", cfg.AdminListen, err)
		}
	}
	if cfg.MetricsListen != "" {
		if metricsLn, err = net.Listen("tcp", cfg.MetricsListen); err != nil {
			_ = ln.Close()
			return fmt.Errorf("listen metrics %s: %w", cfg.MetricsListen, err)
		}
	}
	log.Info("credential proxy listening", "addr", ln.Addr().String(), "admin", cfg.AdminListen,
		"allowlist_entries", opts.Allowlist.Len(), "mcp_rules", len(opts.Rules), "bedrock_region", opts.Bedrock.Region)
	if ready != nil {
		ready <- ln.Addr().String()
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return ignoreClosed(p.Serve(ln)) })
	if adminLn != nil {
		g.Go(func() error { return ignoreClosed(p.ServeAdmin(adminLn)) })
	}
	var metricsSrv *http.Server
	if metricsLn != nil {
		metricsSrv = &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
		g.Go(func() error { return ignoreClosed(metricsSrv.Serve(metricsLn)) })
	}
	g.Go(func() error {
		<-gctx.Done()
		log.Info("credential proxy shutting down")
		sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if metricsSrv != nil {
			_ = metricsSrv.Shutdown(sctx)
		}
		return p.Shutdown(sctx)
	})
	return g.Wait()
}

func ignoreClosed(err error) error {
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// healthcheck GETs /health on the configured listener: 0 when healthy.
func healthcheck(environ map[string]string) int {
	cfg, err := proxyconfig.LoadSidecar(environ)
	if err != nil {
		fmt.Fprintln(os.Stderr, "unhealthy: configuration:", err)
		return 1
	}
	host, port := cfg.ListenHost, strconv.Itoa(int(cfg.ListenPort))
	if host == "0.0.0.0" || host == "::" || host == "" {
		host = "127.0.0.1"
	}
	c := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{Proxy: nil}}
	resp, err := c.Get("http://" + net.JoinHostPort(host, port) + "/health")
	if err != nil {
		fmt.Fprintln(os.Stderr, "unhealthy:", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "unhealthy: status", resp.StatusCode)
		return 1
	}
	return 0
}

// registerProcessMetrics registers the Go runtime and process collectors.
func registerProcessMetrics(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register process metrics: %w", err)
		}
	}
	return nil
}
