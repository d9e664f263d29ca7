package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/workspaced/workspaced/proxy"
	"github.com/workspaced/workspaced/proxy/egress"
	"github.com/workspaced/workspaced/proxy/mcprule"
)

// config is everything the sidecar reads from its environment.
//
//	PROXY_LISTEN_HOST, PROXY_LISTEN_PORT  listener (127.0.0.1:8080)
//	PROXY_DOMAIN_WHITELIST                allowlist: host or *.domain, comma/space separated
//	PROXY_ALLOWED_PORTS                   CONNECT/forward ports (443,80)
//	PROXY_PRIVATE_HOSTS                   hosts allowed to resolve to private addresses
//	MCP_HEADER_RULES                      initial MCP rules (JSON array, see proxy/mcprule)
//	PROXY_ADMIN_LISTEN, PROXY_ADMIN_TOKEN admin API (disabled when PROXY_ADMIN_LISTEN is empty)
//	PROXY_METRICS_LISTEN                  Prometheus /metrics (disabled when empty)
//	AWS_REGION                            Bedrock region (and the standard AWS credential chain)
//	BEDROCK_UPSTREAM_URL                  override https://bedrock-runtime.<region>.amazonaws.com
//	BEDROCK_ALLOWED_MODELS                model allowlist (comma separated, trailing * = prefix)
//	PROXY_LOG_ALL_REQUESTS                also log health checks (true/false)
//	PROXY_LOG_LEVEL                       debug|info|warn|error
//	PROXY_MAX_HEADER_BYTES, PROXY_MAX_CONNECT_HEADER_BYTES, PROXY_MAX_BEDROCK_BODY_BYTES,
//	PROXY_MAX_TUNNELS, PROXY_MAX_BEDROCK_IN_FLIGHT, PROXY_READ_HEADER_TIMEOUT, PROXY_BODY_READ_TIMEOUT, PROXY_IDLE_TIMEOUT, PROXY_DNS_TIMEOUT,
//	PROXY_DIAL_TIMEOUT, PROXY_TUNNEL_IDLE_TIMEOUT, PROXY_RESPONSE_HEADER_TIMEOUT  limits
type config struct {
	Listen         string
	AdminListen    string
	MetricsListen  string
	LogLevel       string
	Options        proxy.Options
	BedrockEnabled bool
}

// minAdminToken is the shortest admin token accepted (the derived token is
// 64 hex characters).
const minAdminToken = 32

func parseConfig(getenv func(string) string) (config, error) {
	var c config
	var errs []error
	bad := func(name string, err error) { errs = append(errs, fmt.Errorf("%s: %w", name, err)) }

	host, port := envOr(getenv, "PROXY_LISTEN_HOST", "127.0.0.1"), envOr(getenv, "PROXY_LISTEN_PORT", "8080")
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		bad("PROXY_LISTEN_PORT", fmt.Errorf("want 0-65535, got %q", port))
	}
	c.Listen = net.JoinHostPort(host, port)
	c.AdminListen = getenv("PROXY_ADMIN_LISTEN")
	c.MetricsListen = getenv("PROXY_METRICS_LISTEN")
	c.LogLevel = envOr(getenv, "PROXY_LOG_LEVEL", "info")

	o := &c.Options
	al, err := egress.ParseAllowlist(getenv("PROXY_DOMAIN_WHITELIST"))
	if err != nil {
		bad("PROXY_DOMAIN_WHITELIST", err)
	}
	o.Allowlist = al
	if v := getenv("PROXY_ALLOWED_PORTS"); v != "" {
		for _, f := range splitList(v) {
			p, err := egress.ParsePort(f)
			if err != nil {
				bad("PROXY_ALLOWED_PORTS", err)
				continue
			}
			o.AllowedPorts = append(o.AllowedPorts, p)
		}
	}
	o.PrivateHosts = splitList(getenv("PROXY_PRIVATE_HOSTS"))
	set, err := mcprule.Parse([]byte(getenv("MCP_HEADER_RULES")))
	if err != nil {
		bad("MCP_HEADER_RULES", err)
	}
	o.Rules = set.Rules()
	o.AdminToken = getenv("PROXY_ADMIN_TOKEN")
	if c.AdminListen != "" && len(o.AdminToken) < minAdminToken {
		bad("PROXY_ADMIN_TOKEN", fmt.Errorf("required (at least %d characters) when PROXY_ADMIN_LISTEN is set", minAdminToken))
	}
	if c.AdminListen == "" {
		o.AdminToken = ""
	}
	o.Bedrock.Region = getenv("AWS_REGION")
	c.BedrockEnabled = o.Bedrock.Region != ""
	if v := getenv("BEDROCK_UPSTREAM_URL"); v != "" {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad("BEDROCK_UPSTREAM_URL", fmt.Errorf("want https://host[:port]"))
		} else {
			o.Bedrock.Upstream = u
		}
	}
	o.Bedrock.Models = splitList(getenv("BEDROCK_ALLOWED_MODELS"))
	if v := getenv("PROXY_LOG_ALL_REQUESTS"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			bad("PROXY_LOG_ALL_REQUESTS", err)
		}
		o.LogAllRequests = b
	}
	l := &o.Limits
	intVar(getenv, "PROXY_MAX_HEADER_BYTES", &l.MaxHeaderBytes, bad)
	intVar(getenv, "PROXY_MAX_CONNECT_HEADER_BYTES", &l.MaxConnectHeaderBytes, bad)
	intVar(getenv, "PROXY_MAX_TUNNELS", &l.MaxTunnels, bad)
	intVar(getenv, "PROXY_MAX_BEDROCK_IN_FLIGHT", &l.MaxBedrockInFlight, bad)
	var body int
	intVar(getenv, "PROXY_MAX_BEDROCK_BODY_BYTES", &body, bad)
	l.MaxBedrockBody = int64(body)
	durVar(getenv, "PROXY_READ_HEADER_TIMEOUT", &l.ReadHeaderTimeout, bad)
	durVar(getenv, "PROXY_BODY_READ_TIMEOUT", &l.BodyReadTimeout, bad)
	durVar(getenv, "PROXY_IDLE_TIMEOUT", &l.IdleTimeout, bad)
	durVar(getenv, "PROXY_DNS_TIMEOUT", &l.DNSTimeout, bad)
	durVar(getenv, "PROXY_DIAL_TIMEOUT", &l.DialTimeout, bad)
	durVar(getenv, "PROXY_TUNNEL_IDLE_TIMEOUT", &l.TunnelIdleTimeout, bad)
	durVar(getenv, "PROXY_RESPONSE_HEADER_TIMEOUT", &l.ResponseHeaderTimeout, bad)
	return c, errors.Join(errs...)
}

func envOr(getenv func(string) string, k, def string) string {
	if v := getenv(k); v != "" {
		return v
	}
	return def
}

func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' })
}

func intVar(getenv func(string) string, k string, dst *int, bad func(string, error)) {
	v := getenv(k)
	if v == "" {
		return
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		bad(k, fmt.Errorf("want a positive integer, got %q", v))
		return
	}
	*dst = n
}

func durVar(getenv func(string) string, k string, dst *time.Duration, bad func(string, error)) {
	v := getenv(k)
	if v == "" {
		return
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		bad(k, fmt.Errorf("want a positive duration like 10s, got %q", v))
		return
	}
	*dst = d
}
