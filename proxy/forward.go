package proxy

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/workspaced/workspaced/proxy/egress"
	"github.com/workspaced/workspaced/proxy/mcprule"
)

// target is where a decided request goes. It travels in the request
// context from the handler (which decides) to Rewrite (which only applies).
type target struct {
	scheme      string
	host        egress.Host
	port        uint16
	defaultPort uint16
	rawPath     string // exactly as the client encoded it
	rawQuery    string
	inject      http.Header // MCP headers; nil for plain forwarding
}

type targetKey struct{}

func (t *target) authority() string {
	if t.port == t.defaultPort {
		return t.host.String()
	}
	return t.host.String() + ":" + portString(t.port)
}

func (p *Proxy) initRoutes() {
	p.fwdProxy = &httputil.ReverseProxy{
		Rewrite:        p.rewrite,
		Transport:      p.transport,
		FlushInterval:  -1,
		ErrorHandler:   p.errorHandler,
		ModifyResponse: p.modifyResponse,
		ErrorLog:       nil,
	}
	p.mcpProxy = p.fwdProxy // same mechanics; injection comes from the target
	p.initBedrock()
}

// rewrite builds the outbound request from the decided target. Hop-by-hop
// headers (including any listed in Connection) are already gone; here the
// client's Proxy-*, TE and Upgrade go too, and injected headers overwrite
// whatever the client sent under the same names.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	t := pr.In.Context().Value(targetKey{}).(*target)
	out := pr.Out
	decoded, err := url.PathUnescape(t.rawPath)
	if err != nil {
		decoded = t.rawPath
	}
	out.URL = &url.URL{Scheme: t.scheme, Host: t.host.String() + ":" + portString(t.port),
		Path: decoded, RawPath: t.rawPath, RawQuery: t.rawQuery}
	out.Host = t.authority()
	scrubHeaders(out.Header)
	for k, v := range t.inject {
		out.Header[k] = append([]string(nil), v...)
	}
	a := auditFrom(out.Context())
	trace := &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			if a != nil {
				a.resolved = info.Conn.RemoteAddr().String()
			}
		},
	}
	pr.Out = out.WithContext(httptrace.WithClientTrace(out.Context(), trace))
}

// scrubHeaders removes what never goes upstream, whatever the route.
func scrubHeaders(h http.Header) {
	for k := range h {
		if strings.HasPrefix(k, "Proxy-") {
			delete(h, k)
		}
	}
	for _, k := range []string{"Connection", "Keep-Alive", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
		"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
		delete(h, k)
	}
}

func (p *Proxy) modifyResponse(resp *http.Response) error {
	if a := auditFrom(resp.Request.Context()); a != nil {
		a.upstream = time.Since(a.start)
		p.opts.Metrics.UpstreamStatus.WithLabelValues(a.route, portString(uint16(resp.StatusCode))).Inc()
	}
	return nil
}

// errorHandler maps upstream failures to statuses and audit reasons.
func (p *Proxy) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	a := auditFrom(r.Context())
	status, reason := classifyUpstreamError(err)
	if reason == "signing_failed" || reason == "credentials_unavailable" {
		p.opts.Metrics.SigningFailures.WithLabelValues(reason).Inc()
	}
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		a.decision, a.reason, a.status = "allow", "client_gone", 499
		return
	}
	p.log.Debug("upstream error", "request_id", a.id, "err", err)
	deny(w, a, status, reason, "upstream request failed: "+reason)
}

func classifyUpstreamError(err error) (int, string) {
	var de *egress.DeniedError
	var se *signError
	var re *egress.RefusedError
	switch {
	case errors.As(err, &se):
		return se.status, se.reason
	case errors.As(err, &re):
		// The egress tier's own verdict, passed on: its reason names
		// what it refused (not_allowlisted, address_denied_...).
		reason := "egress_refused"
		if re.Reason != "" {
			reason = "egress_" + re.Reason
		}
		if re.Status >= 400 && re.Status < 600 {
			return re.Status, reason
		}
		return http.StatusBadGateway, reason
	case errors.As(err, &de):
		return http.StatusForbidden, "address_denied_" + de.Reason
	case errors.Is(err, egress.ErrResolveTimeout):
		return http.StatusGatewayTimeout, "dns_timeout"
	case errors.Is(err, egress.ErrResolve):
		return http.StatusBadGateway, "dns_error"
	case errors.Is(err, egress.ErrDialTimeout):
		return http.StatusGatewayTimeout, "dial_timeout"
	case errors.Is(err, egress.ErrDial):
		return http.StatusBadGateway, "dial_error"
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, "upstream_timeout"
	}
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() {
		return http.StatusGatewayTimeout, "upstream_timeout"
	}
	return http.StatusBadGateway, "upstream_error"
}

// serveForward proxies plain http:// to the allowlist.
func (p *Proxy) serveForward(w http.ResponseWriter, r *http.Request, a *audit, host egress.Host, port uint16, rawPath, rawQuery string) {
	if !p.checkDomain(w, a, host, port) {
		return
	}
	t := &target{scheme: "http", host: host, port: port, defaultPort: 80, rawPath: rawPath, rawQuery: rawQuery}
	p.fwdProxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), targetKey{}, t)))
}

// proxyMCP proxies a request that matched an MCP rule to https upstream
// with the rule's headers.
func (p *Proxy) proxyMCP(w http.ResponseWriter, r *http.Request, a *audit, host egress.Host, port uint16, rawPath, rawQuery string, m mcprule.Match) {
	a.rule = m.Rule.ID()
	if methodDenied(r.Method) {
		deny(w, a, http.StatusMethodNotAllowed, "method_not_allowed", "TRACE and TRACK are never proxied")
		return
	}
	t := &target{scheme: "https", host: host, port: port, defaultPort: 443, rawPath: rawPath, rawQuery: rawQuery, inject: m.Headers}
	p.mcpProxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), targetKey{}, t)))
}

// serveMCPGateway handles /mcp/{host[:port]}/{path}: the injection-only
// route. Nothing is proxied without a matching rule.
func (p *Proxy) serveMCPGateway(w http.ResponseWriter, r *http.Request, ws *workspaceState, a *audit, path string) {
	rest := strings.TrimPrefix(path, "/mcp/")
	authority, tail, _ := strings.Cut(rest, "/")
	tail = "/" + tail
	host, port, err := egress.ParseAuthority(authority, 443)
	if err != nil {
		deny(w, a, http.StatusBadRequest, "bad_host", err.Error())
		return
	}
	a.host, a.port, a.path = host.String(), port, redactPath(tail)
	if methodDenied(r.Method) {
		deny(w, a, http.StatusMethodNotAllowed, "method_not_allowed", "TRACE and TRACK are never proxied")
		return
	}
	if host.IsIP() {
		deny(w, a, http.StatusForbidden, "ip_literal", "IP-literal destinations never match an MCP rule")
		return
	}
	segs, err := mcprule.CanonicalPath(tail)
	if err != nil {
		deny(w, a, http.StatusBadRequest, "bad_path", err.Error())
		return
	}
	m, ok := ws.rules.Load().Match(host, port, segs)
	if !ok {
		deny(w, a, http.StatusForbidden, "no_mcp_rule", "no MCP rule for this host, port and path")
		return
	}
	_, rawQuery, _ := strings.Cut(r.RequestURI, "?")
	p.proxyMCP(w, r, a, host, port, tail, rawQuery, m)
}
