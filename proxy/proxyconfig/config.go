// Package proxyconfig is the credential proxy's configuration as the
// environment states it. Config (the egress policy, Bedrock and limits) is
// read the same way by workspaced, whose config.Config embeds it for the
// in-process proxy of Docker mode, and by cmd/credential-proxy, the ECS
// sidecar, whose Sidecar adds its listeners, admin token and initial MCP
// rules. Both parse through envconf, so one environment gives one policy
// (see proxy.OptionsFromConfig and its test).
//
// It is a leaf: it imports only the proxy's vocabulary (egress, mcprule)
// and envconf, so config can embed Config without importing the proxy's
// adapters (AWS signing, Prometheus, HTTP serving).
package proxyconfig

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/workspaced/workspaced/config/envconf"
	"github.com/workspaced/workspaced/proxy/egress"
)

// Config is the proxy's policy, the same in every binary that runs a
// proxy. Defaults equal proxy.Options' zero-value defaults (a test in
// package proxy keeps them equal).
type Config struct {
	// DomainAllowlist is where CONNECT and plain-HTTP forwarding may go:
	// exact hosts and "*.suffix" entries. Empty: only Bedrock and MCP.
	DomainAllowlist Allowlist `env:"PROXY_DOMAIN_WHITELIST"`
	// AllowedPorts are the ports CONNECT and forwarding may use.
	AllowedPorts Ports `env:"PROXY_ALLOWED_PORTS" envDefault:"443,80"`
	// PrivateHosts are exact host names allowed to resolve to private
	// addresses (loopback, link-local and metadata stay forbidden).
	PrivateHosts envconf.List `env:"PROXY_PRIVATE_HOSTS"`
	// EgressProxy is the egress tier, host:port of a CONNECT proxy: every
	// upstream but the PrivateHosts goes through it (docs/decisions.md
	// D21). Empty: the proxy dials itself.
	EgressProxy string `env:"PROXY_EGRESS_PROXY"`
	// BedrockRegion is the Bedrock region; empty means the process's
	// AWS_REGION (see proxy.OptionsFromConfig).
	BedrockRegion string `env:"BEDROCK_REGION"`
	// BedrockUpstream overrides https://bedrock-runtime.<region>.amazonaws.com.
	BedrockUpstream Upstream `env:"BEDROCK_UPSTREAM_URL"`
	// BedrockModels, if set, is the model allowlist; an entry ending in
	// "*" is a prefix.
	BedrockModels envconf.List `env:"BEDROCK_ALLOWED_MODELS"`
	// LogAllRequests also audits health checks.
	LogAllRequests bool `env:"PROXY_LOG_ALL_REQUESTS" envDefault:"false"`
	Limits         Limits
}

// Limits bound every request (see proxy.Limits for what each does).
type Limits struct {
	MaxHeaderBytes        int           `env:"PROXY_MAX_HEADER_BYTES" envDefault:"16384"`
	MaxConnectHeaderBytes int           `env:"PROXY_MAX_CONNECT_HEADER_BYTES" envDefault:"8192"`
	MaxBedrockBody        int64         `env:"PROXY_MAX_BEDROCK_BODY_BYTES" envDefault:"10485760"`
	MaxTunnels            int           `env:"PROXY_MAX_TUNNELS" envDefault:"64"`
	MaxBedrockInFlight    int           `env:"PROXY_MAX_BEDROCK_IN_FLIGHT" envDefault:"16"`
	ReadHeaderTimeout     time.Duration `env:"PROXY_READ_HEADER_TIMEOUT" envDefault:"10s"`
	BodyReadTimeout       time.Duration `env:"PROXY_BODY_READ_TIMEOUT" envDefault:"60s"`
	IdleTimeout           time.Duration `env:"PROXY_IDLE_TIMEOUT" envDefault:"120s"`
	DNSTimeout            time.Duration `env:"PROXY_DNS_TIMEOUT" envDefault:"5s"`
	DialTimeout           time.Duration `env:"PROXY_DIAL_TIMEOUT" envDefault:"10s"`
	TunnelIdleTimeout     time.Duration `env:"PROXY_TUNNEL_IDLE_TIMEOUT" envDefault:"10m"`
	ResponseHeaderTimeout time.Duration `env:"PROXY_RESPONSE_HEADER_TIMEOUT" envDefault:"10m"`
}

// Validate reports every limit that is not positive (the proxy would
// otherwise silently fall back to its default).
func (c Config) Validate() error {
	l := c.Limits
	positive := []struct {
		name string
		ok   bool
	}{
		{"PROXY_MAX_HEADER_BYTES", l.MaxHeaderBytes > 0},
		{"PROXY_MAX_CONNECT_HEADER_BYTES", l.MaxConnectHeaderBytes > 0},
		{"PROXY_MAX_BEDROCK_BODY_BYTES", l.MaxBedrockBody > 0},
		{"PROXY_MAX_TUNNELS", l.MaxTunnels > 0},
		{"PROXY_MAX_BEDROCK_IN_FLIGHT", l.MaxBedrockInFlight > 0},
		{"PROXY_READ_HEADER_TIMEOUT", l.ReadHeaderTimeout > 0},
		{"PROXY_BODY_READ_TIMEOUT", l.BodyReadTimeout > 0},
		{"PROXY_IDLE_TIMEOUT", l.IdleTimeout > 0},
		{"PROXY_DNS_TIMEOUT", l.DNSTimeout > 0},
		{"PROXY_DIAL_TIMEOUT", l.DialTimeout > 0},
		{"PROXY_TUNNEL_IDLE_TIMEOUT", l.TunnelIdleTimeout > 0},
		{"PROXY_RESPONSE_HEADER_TIMEOUT", l.ResponseHeaderTimeout > 0},
	}
	var errs []error
	if c.EgressProxy != "" {
		if _, _, err := egress.ParseVia(c.EgressProxy); err != nil {
			errs = append(errs, fmt.Errorf("PROXY_EGRESS_PROXY: %w", err))
		}
	}
	for _, p := range positive {
		if !p.ok {
			errs = append(errs, fmt.Errorf("%s: must be positive", p.name))
		}
	}
	return errors.Join(errs...)
}

// Allowlist is PROXY_DOMAIN_WHITELIST: a list (envconf.List grammar) of
// egress patterns; any bad entry fails the whole list.
type Allowlist struct{ egress.Allowlist }

// UnmarshalText parses the list.
func (a *Allowlist) UnmarshalText(text []byte) error {
	al, err := egress.NewAllowlist(envconf.Split(string(text)))
	if err != nil {
		return err
	}
	a.Allowlist = al
	return nil
}

// Ports is PROXY_ALLOWED_PORTS: a list of decimal ports 1-65535.
type Ports []uint16

// UnmarshalText parses the list.
func (p *Ports) UnmarshalText(text []byte) error {
	var out Ports
	for _, f := range envconf.Split(string(text)) {
		n, err := egress.ParsePort(f)
		if err != nil {
			return err
		}
		out = append(out, n)
	}
	*p = out
	return nil
}

// Upstream is BEDROCK_UPSTREAM_URL: http(s)://host[:port], no path. The
// zero Upstream (URL nil) means the region's endpoint.
type Upstream struct{ URL *url.URL }

// UnmarshalText parses and checks the URL.
func (u *Upstream) UnmarshalText(text []byte) error {
	p, err := url.Parse(string(text))
	if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" || (p.Path != "" && p.Path != "/") {
		return errors.New("want https://host[:port] without a path")
	}
	u.URL = p
	return nil
}

// String is the URL, or "" when unset.
func (u Upstream) String() string {
	if u.URL == nil {
		return ""
	}
	return u.URL.String()
}
