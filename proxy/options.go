package proxy

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/workspaced/workspaced/proxy/egress"
	"github.com/workspaced/workspaced/proxy/mcprule"
)

// MCPRule is one MCP header-injection rule (see package mcprule for the
// JSON form and matching).
type MCPRule = mcprule.Rule

// Options configure a Proxy. Zero values get the documented defaults.
type Options struct {
	Logger  *slog.Logger // default: discard
	Metrics *Metrics     // default: collectors registered nowhere

	// Allowlist is the domain allowlist for CONNECT and plain-HTTP
	// forwarding (PROXY_DOMAIN_WHITELIST).
	Allowlist egress.Allowlist
	// AllowedPorts for CONNECT and plain forwarding. Default 443 and 80.
	AllowedPorts []uint16
	// PrivateHosts are exact host names allowed to resolve to private
	// addresses (RFC 1918, shared, ULA). Loopback, link-local and
	// metadata addresses stay forbidden for every host.
	PrivateHosts []string
	// EgressProxy, if set, is the egress tier (host:port of a CONNECT
	// proxy): every upstream except the PrivateHosts (VPC endpoints such
	// as Bedrock's) is reached through it by name, never dialed directly
	// (PROXY_EGRESS_PROXY, docs/decisions.md D21).
	EgressProxy string
	// Rules are the initial MCP rules of the default workspace (key ""),
	// the sidecar's MCP_HEADER_RULES.
	Rules []MCPRule

	Bedrock BedrockOptions

	// Resolver and Dial are how the proxy reaches the network: every
	// upstream connection is resolved once through Resolver, checked, and
	// dialed by address through Dial. Defaults: net.DefaultResolver and
	// egress.NetDialer(). Tests pass fakes so nothing leaves the machine.
	Resolver egress.Resolver
	Dial     egress.DialFunc
	// UpstreamTLS is the TLS client config for https upstreams (MCP and
	// Bedrock). Default: system roots, TLS 1.2+.
	UpstreamTLS *tls.Config

	Limits Limits

	// LogAllRequests also writes audit lines for health checks.
	LogAllRequests bool
	// AdminToken authenticates the admin API (sidecar mode). Empty
	// disables it: ServeAdmin refuses to start.
	AdminToken string
	// Now is the clock (signing time, admin timestamps). Default time.Now.
	Now func() time.Time
}

// BedrockOptions configure the Bedrock gateway route.
type BedrockOptions struct {
	// Region of the Bedrock runtime endpoint and of the signature scope.
	// Empty disables the route (every Bedrock request gets 503).
	Region string
	// Upstream overrides https://bedrock-runtime.<region>.amazonaws.com.
	Upstream *url.URL
	// Credentials sign every request (the proxy process's AWS chain).
	// Nil: every Bedrock request gets 503.
	Credentials aws.CredentialsProvider
	// Models, if non-empty, is the allowlist of model ids (decoded, as in
	// the path). An entry ending in "*" is a prefix.
	Models []string
	// Operations allowed after /model/{id}/. Default: invoke,
	// invoke-with-response-stream, converse, converse-stream, count-tokens.
	Operations []string
	// Transport overrides the upstream transport (default: dials through
	// the egress policy with UpstreamTLS).
	Transport http.RoundTripper
}

// Limits bound every request. Each has a default and a test.
type Limits struct {
	MaxHeaderBytes        int           // request header block; default 16 KiB → 431
	MaxConnectHeaderBytes int           // CONNECT header block; default 8 KiB → 431
	MaxBedrockBody        int64         // signed route body cap; default 10 MiB → 413
	ReadHeaderTimeout     time.Duration // default 10s (slowloris)
	BodyReadTimeout       time.Duration // reading a Bedrock body to sign it; default 60s → 408
	IdleTimeout           time.Duration // client keep-alive idle; default 120s
	DNSTimeout            time.Duration // default 5s
	DialTimeout           time.Duration // default 10s → 504
	TunnelIdleTimeout     time.Duration // CONNECT tunnel with no bytes either way; default 10m
	MaxTunnels            int           // concurrent CONNECT tunnels per workspace; default 64 → 503
	MaxBedrockInFlight    int           // concurrent Bedrock calls per workspace (each buffers its body); default 16 → 503
	ResponseHeaderTimeout time.Duration // upstream time to response headers; default 10m
	CredentialTimeout     time.Duration // retrieving AWS credentials; default 10s
}

func (l *Limits) setDefaults() {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = 16 << 10
	}
	if l.MaxConnectHeaderBytes <= 0 {
		l.MaxConnectHeaderBytes = 8 << 10
	}
	if l.MaxBedrockBody <= 0 {
		l.MaxBedrockBody = 10 << 20
	}
	def(&l.ReadHeaderTimeout, 10*time.Second)
	def(&l.BodyReadTimeout, 60*time.Second)
	def(&l.IdleTimeout, 120*time.Second)
	def(&l.DNSTimeout, 5*time.Second)
	def(&l.DialTimeout, 10*time.Second)
	def(&l.TunnelIdleTimeout, 10*time.Minute)
	def(&l.ResponseHeaderTimeout, 10*time.Minute)
	def(&l.CredentialTimeout, 10*time.Second)
	if l.MaxTunnels <= 0 {
		l.MaxTunnels = 64
	}
	if l.MaxBedrockInFlight <= 0 {
		l.MaxBedrockInFlight = 16
	}
}

var defaultOperations = []string{"invoke", "invoke-with-response-stream", "converse", "converse-stream", "count-tokens"}

func (o *Options) setDefaults() error {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics, _ = NewMetrics(nil) // registers nothing: cannot fail
	}
	if len(o.AllowedPorts) == 0 {
		o.AllowedPorts = []uint16{443, 80}
	}
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
	if o.Dial == nil {
		o.Dial = egress.NetDialer()
	}
	if o.UpstreamTLS == nil {
		o.UpstreamTLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.Limits.setDefaults()
	if len(o.Bedrock.Operations) == 0 {
		o.Bedrock.Operations = defaultOperations
	}
	for _, op := range o.Bedrock.Operations {
		if op == "invoke-with-bidirectional-stream" {
			return fmt.Errorf("bedrock operation %q is chunk-signed and cannot be re-signed", op)
		}
	}
	if o.EgressProxy != "" {
		if _, _, err := egress.ParseVia(o.EgressProxy); err != nil {
			return fmt.Errorf("egress proxy %q: %w", o.EgressProxy, err)
		}
	}
	if o.Bedrock.Region != "" && o.Bedrock.Upstream == nil {
		o.Bedrock.Upstream = &url.URL{Scheme: "https", Host: "bedrock-runtime." + o.Bedrock.Region + ".amazonaws.com"}
	}
	if u := o.Bedrock.Upstream; u != nil && (u.Scheme != "https" && u.Scheme != "http" || u.Host == "" || (u.Path != "" && u.Path != "/")) {
		return fmt.Errorf("bedrock upstream %q: want scheme://host[:port] without a path", u.Redacted())
	}
	return nil
}
