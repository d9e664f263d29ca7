package proxy_test

import (
	"crypto/tls"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/workspaced/workspaced/proxy"
	"github.com/workspaced/workspaced/proxy/egress"
)

// chained is a sidecar whose only route out is an egress tier (another
// proxy, the tier world), as on ECS (docs/decisions.md D21): the sidecar's
// network knows the tier's name and the private hosts, nothing else.
type chained struct {
	tier, sidecar *world
}

func newChained(t *testing.T, tierAllow string) chained {
	t.Helper()
	tier := newWorld(t, func(o *proxy.Options) {
		al, err := egress.ParseAllowlist(tierAllow)
		if err != nil {
			t.Fatal(err)
		}
		o.Allowlist = al
		o.Rules = nil // the tier injects nothing: it only tunnels
	})
	sidecar := newWorld(t, func(o *proxy.Options) {
		o.EgressProxy = "egress.internal:3128"
		// The upstreams behind the tier are the tier world's.
		o.UpstreamTLS = &tls.Config{RootCAs: tier.rootPool(), MinVersion: tls.VersionTLS12}
	})
	// The sidecar's network: the tier (a private address, allowed for
	// the tier only) and its own private hosts; every public name of the
	// standard world stays resolvable so a direct dial would show as a
	// dial to 93.184.216.x.
	sidecar.net.addName("egress.internal", addrs("10.0.9.9"))
	sidecar.net.route("10.0.9.9:3128", tier.addr)
	return chained{tier: tier, sidecar: sidecar}
}

// sidecarDials are the sidecar's dials other than to the tier and its
// private hosts: they must be none.
func (c chained) directDials() []string {
	dials, _, _ := c.sidecar.net.snapshot()
	var out []string
	for _, d := range dials {
		if d != "10.0.9.9:3128" && !strings.HasPrefix(d, "10.0.0.9:") {
			out = append(out, d)
		}
	}
	return out
}

func TestEgressTierCarriesTunnels(t *testing.T) {
	c := newChained(t, "allowed.example,mcp.example.com")
	resp, _ := c.sidecar.raw("CONNECT allowed.example:443 HTTP/1.1\r\nHost: allowed.example:443\r\n\r\n")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT through the tier: %d %s", resp.StatusCode, resp.Header.Get("X-Proxy-Error"))
	}
	if !c.tier.awaitAccept() {
		t.Fatal("the upstream never saw the tunnel")
	}
	if d := c.directDials(); len(d) != 0 {
		t.Fatalf("the sidecar dialed %v itself; everything must go through the tier", d)
	}
	if _, _, lookups := c.sidecar.net.snapshot(); lookups != 1 {
		t.Fatalf("the sidecar made %d lookups; only the tier's name (once) — destinations are resolved by the tier", lookups)
	}
	if dials, _, _ := c.tier.net.snapshot(); len(dials) != 1 || dials[0] != "93.184.216.34:443" {
		t.Fatalf("the tier dialed %v; want the checked address of allowed.example", dials)
	}
}

// MCP header injection happens in the sidecar; the TLS connection to the
// MCP server runs inside a tunnel of the tier, which sees no header.
func TestEgressTierCarriesMCP(t *testing.T) {
	c := newChained(t, "allowed.example,mcp.example.com")
	resp, body := c.sidecar.raw("POST /mcp/mcp.example.com/mcp/tools HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Length: 2\r\n\r\n{}")
	if resp.StatusCode != http.StatusOK || body != "upstream ok" {
		t.Fatalf("MCP through the tier: %d %q", resp.StatusCode, body)
	}
	reqs := c.tier.mcp.requests()
	if len(reqs) != 1 || reqs[0].Header.Get("Authorization") != injected || !reqs[0].TLS {
		t.Fatalf("MCP upstream saw %+v", reqs)
	}
	if d := c.directDials(); len(d) != 0 {
		t.Fatalf("the sidecar dialed %v itself", d)
	}
}

// The tier's allowlist is checked again: a host the sidecar would allow
// but the tier does not is refused with the tier's reason, and nothing is
// dialed anywhere.
func TestEgressTierRefusalIsPassedOn(t *testing.T) {
	c := newChained(t, "mcp.example.com")
	resp, _ := c.sidecar.raw("CONNECT allowed.example:443 HTTP/1.1\r\nHost: allowed.example:443\r\n\r\n")
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Proxy-Error") != "egress_host_not_allowed" {
		t.Fatalf("got %d %q; want 403 egress_host_not_allowed", resp.StatusCode, resp.Header.Get("X-Proxy-Error"))
	}
	if dials, _, _ := c.tier.net.snapshot(); len(dials) != 0 {
		t.Fatalf("the tier dialed %v for a host it does not allow", dials)
	}
	if d := c.directDials(); len(d) != 0 {
		t.Fatalf("the sidecar dialed %v itself", d)
	}
	// The tier's address checks hold too: a name resolving to metadata.
	c2 := newChained(t, "*.allowed.example")
	resp, _ = c2.sidecar.raw("CONNECT meta.allowed.example:443 HTTP/1.1\r\nHost: meta.allowed.example:443\r\n\r\n")
	if resp.StatusCode != http.StatusForbidden || !strings.HasPrefix(resp.Header.Get("X-Proxy-Error"), "egress_address_denied_") {
		t.Fatalf("got %d %q; want 403 egress_address_denied_*", resp.StatusCode, resp.Header.Get("X-Proxy-Error"))
	}
}

// A private host (a VPC endpoint: Bedrock's) is dialed directly, never
// through the tier.
func TestEgressTierSkipsPrivateHosts(t *testing.T) {
	c := newChained(t, "allowed.example")
	resp, _ := c.sidecar.raw("CONNECT private-ok.example:443 HTTP/1.1\r\nHost: private-ok.example:443\r\n\r\n")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT to a private host: %d %s", resp.StatusCode, resp.Header.Get("X-Proxy-Error"))
	}
	dials, _, _ := c.sidecar.net.snapshot()
	if len(dials) != 1 || dials[0] != "10.0.0.9:443" {
		t.Fatalf("sidecar dials %v; want the private host's address only", dials)
	}
	if tierDials, _, _ := c.tier.net.snapshot(); len(tierDials) != 0 {
		t.Fatalf("the tier was used for a private host: %v", tierDials)
	}
}

// A tier that does not answer is a 504 for the client, not a direct dial.
func TestEgressTierDownFailsClosed(t *testing.T) {
	w := newWorld(t, func(o *proxy.Options) {
		o.EgressProxy = "egress.internal:3128"
		o.Limits.DialTimeout = 200 * time.Millisecond
	})
	w.net.addName("egress.internal", addrs("10.0.9.9"))
	w.net.mu.Lock()
	w.net.blocking["10.0.9.9:3128"] = true
	w.net.mu.Unlock()
	resp, _ := w.raw("CONNECT allowed.example:443 HTTP/1.1\r\nHost: allowed.example:443\r\n\r\n")
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("got %d %q; want 504", resp.StatusCode, resp.Header.Get("X-Proxy-Error"))
	}
	if dials, _, _ := w.net.snapshot(); len(dials) != 1 || dials[0] != "10.0.9.9:3128" {
		t.Fatalf("dials %v; want the tier only", dials)
	}
}
