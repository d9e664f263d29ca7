package proxy

import (
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/workspaced/workspaced/proxy/egress"
	"github.com/workspaced/workspaced/proxy/mcprule"
)

// bedrockAPIPrefixes are Bedrock runtime and control-plane paths that are
// refused with 403 (outside the operation allowlist) rather than 400.
var bedrockAPIPrefixes = []string{"/model/", "/guardrail/", "/async-invoke", "/foundation-models",
	"/custom-models", "/inference-profiles", "/guardrails", "/model-customization-jobs",
	"/provisioned-model-throughput", "/model-invocation-jobs", "/evaluation-jobs"}

// serveOrigin handles origin-form requests: health, the Bedrock gateway
// and the MCP gateway. Anything else is not a route (400): origin-form is
// never forwarded anywhere.
func (p *Proxy) serveOrigin(w http.ResponseWriter, r *http.Request, ws *workspaceState, a *audit) {
	path, _, _ := strings.Cut(r.RequestURI, "?")
	a.path = redactPath(r.RequestURI)
	if r.RequestURI == "/health" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		a.route = routeHealth
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
		return
	}
	if !localHost(r.Host) {
		// C2: an origin-form request names the proxy itself; a Host header
		// pointing elsewhere is an attempt to steer a gateway route.
		deny(w, a, http.StatusForbidden, "host_mismatch", "origin-form requests must be addressed to the proxy")
		return
	}
	switch {
	case strings.HasPrefix(path, "/mcp/"):
		a.route = routeMCP
		p.serveMCPGateway(w, r, ws, a, path)
	case path == "/" || hasAnyPrefix(path, bedrockAPIPrefixes):
		a.route = routeBedrock
		select {
		case ws.bedrock <- struct{}{}:
			defer func() { <-ws.bedrock }()
		default:
			deny(w, a, http.StatusServiceUnavailable, "too_many_bedrock_calls", "concurrent Bedrock call limit reached")
			return
		}
		p.serveBedrock(w, r, a, path)
	default:
		deny(w, a, http.StatusBadRequest, "not_a_route", "origin-form request to the forward proxy; use absolute-form or CONNECT")
	}
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// localHost reports whether a Host header names the proxy: empty, a
// loopback literal or "localhost", any port.
func localHost(h string) bool {
	if h == "" {
		return true
	}
	host := h
	if hp, _, err := net.SplitHostPort(h); err == nil {
		host = hp
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && ip.Unmap().IsLoopback()
}

// methodDenied refuses methods that reflect or tunnel (D6).
func methodDenied(m string) bool {
	return m == http.MethodTrace || m == "TRACK" || m == http.MethodConnect
}

// serveAbsolute handles absolute-form requests (HTTP_PROXY clients).
// https:// in absolute form is refused (no TLS stripping: the client must
// CONNECT). http:// matching an MCP rule is upgraded to https with the
// rule's headers; any other http:// is forwarded as plain HTTP to the
// allowlist.
func (p *Proxy) serveAbsolute(w http.ResponseWriter, r *http.Request, ws *workspaceState, a *audit) {
	a.route = routeForward
	u, err := url.ParseRequestURI(r.RequestURI)
	if err != nil || u.Host == "" || u.User != nil || u.Opaque != "" {
		deny(w, a, http.StatusBadRequest, "bad_request_target", "malformed absolute-form target")
		return
	}
	a.path = redactPath(u.EscapedPath())
	switch strings.ToLower(u.Scheme) {
	case "http":
	case "https":
		deny(w, a, http.StatusBadRequest, "tls_in_absolute_form", "https in absolute form is not proxied; use CONNECT")
		return
	default:
		deny(w, a, http.StatusBadRequest, "bad_scheme", "only http:// is proxied in absolute form")
		return
	}
	_, explicitPort := splitPortPresent(u.Host)
	host, port, err := egress.ParseAuthority(u.Host, 80)
	if err != nil {
		deny(w, a, http.StatusBadRequest, "bad_host", err.Error())
		return
	}
	a.host, a.port = host.String(), port
	if methodDenied(r.Method) {
		deny(w, a, http.StatusMethodNotAllowed, "method_not_allowed", "TRACE and TRACK are never proxied")
		return
	}
	rawPath := u.EscapedPath()
	if rawPath == "" {
		rawPath = "/"
	}
	// MCP injection: the rule's port is the https port; an absolute-form
	// URL without a port means "the rule's port" (443 by default).
	mcpPort := port
	if !explicitPort {
		mcpPort = 443
	}
	if !host.IsIP() {
		if segs, perr := mcprule.CanonicalPath(rawPath); perr == nil {
			if m, ok := ws.rules.Load().Match(host, mcpPort, segs); ok {
				a.route = routeMCP
				a.port = mcpPort
				p.proxyMCP(w, r, a, host, mcpPort, rawPath, u.RawQuery, m)
				return
			}
		}
	}
	p.serveForward(w, r, a, host, port, rawPath, u.RawQuery)
}

// splitPortPresent reports whether an authority carries an explicit port.
func splitPortPresent(authority string) (string, bool) {
	if strings.HasPrefix(authority, "[") {
		i := strings.LastIndexByte(authority, ']')
		return authority, i >= 0 && i+1 < len(authority) && authority[i+1] == ':'
	}
	return authority, strings.Count(authority, ":") == 1
}

// checkDomain applies the allowlist and port policy to a forward or
// CONNECT destination; it writes the denial and returns false.
func (p *Proxy) checkDomain(w http.ResponseWriter, a *audit, host egress.Host, port uint16) bool {
	if host.IsIP() {
		deny(w, a, http.StatusForbidden, "ip_literal", "IP-literal destinations never match the domain allowlist")
		return false
	}
	pat, ok := p.opts.Allowlist.Match(host)
	if !ok {
		deny(w, a, http.StatusForbidden, "host_not_allowed", "destination is not on the allowlist")
		return false
	}
	a.rule = pat.String()
	if !p.allowedPorts[port] {
		deny(w, a, http.StatusForbidden, "port_not_allowed", "destination port is not allowed")
		return false
	}
	return true
}
