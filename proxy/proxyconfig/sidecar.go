package proxyconfig

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"

	"github.com/workspaced/workspaced/config/envconf"
	"github.com/workspaced/workspaced/proxy/mcprule"
)

// MinAdminToken is the shortest PROXY_ADMIN_TOKEN accepted (the token the
// backend derives is 64 hex characters).
const MinAdminToken = 32

// Sidecar is the whole environment of cmd/credential-proxy: the shared
// policy plus what only a standalone proxy has (its listeners, log level,
// admin token, the default workspace's MCP rules and the AWS region it
// signs in).
type Sidecar struct {
	Proxy Config

	ListenHost string `env:"PROXY_LISTEN_HOST" envDefault:"127.0.0.1"`
	ListenPort uint16 `env:"PROXY_LISTEN_PORT" envDefault:"8080"`
	// AdminListen enables the admin API; empty disables it.
	AdminListen string `env:"PROXY_ADMIN_LISTEN"`
	// AdminToken authenticates the admin API; ignored without AdminListen.
	AdminToken envconf.Secret `env:"PROXY_ADMIN_TOKEN"`
	// MetricsListen serves Prometheus /metrics; empty disables it.
	MetricsListen string     `env:"PROXY_METRICS_LISTEN"`
	LogLevel      slog.Level `env:"PROXY_LOG_LEVEL" envDefault:"info"`
	// MCPRules are the default workspace's initial MCP rules (a JSON
	// array, see package mcprule). They hold credentials: never printed.
	MCPRules Rules `env:"MCP_HEADER_RULES"`
	// AWSRegion is the process's region: the Bedrock region unless
	// BEDROCK_REGION is set. No default: without a region the Bedrock
	// route is off (every Bedrock call gets 503).
	AWSRegion string `env:"AWS_REGION"`
}

// LoadSidecar parses and validates the sidecar's environment.
func LoadSidecar(environ map[string]string) (Sidecar, error) {
	s, err := envconf.Parse[Sidecar](environ)
	if err != nil {
		return Sidecar{}, err
	}
	if err := s.Validate(); err != nil {
		return Sidecar{}, err
	}
	return s, nil
}

// Validate reports every inconsistency at once.
func (s Sidecar) Validate() error {
	errs := []error{s.Proxy.Validate()}
	if s.AdminListen != "" && len(s.AdminToken.Reveal()) < MinAdminToken {
		errs = append(errs, fmt.Errorf("PROXY_ADMIN_TOKEN: required (at least %d characters) when PROXY_ADMIN_LISTEN is set", MinAdminToken))
	}
	return errors.Join(errs...)
}

// ListenAddr is the proxy listener's host:port.
func (s Sidecar) ListenAddr() string {
	return net.JoinHostPort(s.ListenHost, strconv.Itoa(int(s.ListenPort)))
}

// AdminTokenIfEnabled is the admin token when the admin API is enabled,
// else "" (the proxy then refuses to serve it).
func (s Sidecar) AdminTokenIfEnabled() string {
	if s.AdminListen == "" {
		return ""
	}
	return s.AdminToken.Reveal()
}

// Rules is MCP_HEADER_RULES, validated. It prints only the rules' ids:
// header values are credentials.
type Rules struct{ set mcprule.Set }

// UnmarshalText parses and validates the JSON array.
func (r *Rules) UnmarshalText(text []byte) error {
	set, err := mcprule.Parse(text)
	if err != nil {
		return err
	}
	r.set = set
	return nil
}

// Rules returns the validated rules.
func (r Rules) Rules() []mcprule.Rule { return r.set.Rules() }

// String lists the rules' ids, never their headers.
func (r Rules) String() string {
	rules := r.set.Rules()
	ids := make([]string, len(rules))
	for i, rule := range rules {
		ids[i] = rule.ID()
	}
	return "[" + strings.Join(ids, " ") + "] (header values redacted)"
}

// GoString hides the headers from %#v.
func (r Rules) GoString() string { return r.String() }

// LogValue hides the headers from slog.
func (r Rules) LogValue() slog.Value { return slog.StringValue(r.String()) }

// MarshalJSON hides the headers from JSON encoders.
func (r Rules) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(r.String())), nil }
