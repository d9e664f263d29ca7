// Package proxy is the credential-injection proxy between a workspace and
// the network. A workspace holds no credential; the proxy:
//
//   - signs Bedrock runtime calls (origin-form POST /model/{id}/{op}) with
//     SigV4 using the proxy process's AWS credentials;
//   - injects MCP headers on routes the backend configured (per workspace,
//     changeable after start): the gateway form
//     http://127.0.0.1:8080/mcp/{host[:port]}/{path} and absolute-form
//     http:// requests, both upgraded to https upstream;
//   - forwards CONNECT and absolute-form http:// only to the domain
//     allowlist and allowed ports, deciding on the resolved address at dial
//     time (package egress).
//
// It runs as a sidecar (one TCP listener, one workspace, rules settable
// through an authenticated admin listener) or inside workspaced (host mode:
// one Unix-socket listener per workspace, Open/Close/SetRules).
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/workspaced/workspaced/proxy/egress"
	"github.com/workspaced/workspaced/proxy/mcprule"
)

// Errors of the host-mode API.
var (
	ErrUnknownWorkspace = errors.New("proxy: unknown workspace")
	ErrAlreadyOpen      = errors.New("proxy: workspace listener already open")
	ErrClosed           = errors.New("proxy: shut down")
)

// Proxy serves any number of listeners, each bound to a workspace key.
// Safe for concurrent use.
type Proxy struct {
	opts   Options
	log    *slog.Logger
	dialer *egress.Dialer
	via    *egress.Via // nil: dial directly
	srv    *http.Server

	privateHosts map[string]bool
	allowedPorts map[uint16]bool

	bedrockProxy *httputil.ReverseProxy
	mcpProxy     *httputil.ReverseProxy
	fwdProxy     *httputil.ReverseProxy
	transport    *http.Transport // MCP (https) and forward (http) upstreams

	mu         sync.Mutex
	workspaces map[string]*workspaceState
	closed     bool

	wg sync.WaitGroup // Serve goroutines started by Open

	admin    adminState   // sidecar admin API (default workspace)
	adminSrv *http.Server // nil until ServeAdmin
}

// workspaceState is everything the proxy keeps per workspace key.
type workspaceState struct {
	key     string
	rules   atomic.Pointer[mcprule.Set]
	tunnels chan struct{} // semaphore of concurrent CONNECT tunnels
	bedrock chan struct{} // semaphore of concurrent Bedrock calls
	ln      net.Listener  // host mode only
	path    string        // host mode socket path

	connMu sync.Mutex
	conns  map[net.Conn]struct{}
}

// New builds a Proxy. It fails on an invalid configuration (bad rules,
// bad upstream) so a misconfigured proxy never starts.
func New(opts Options) (*Proxy, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, fmt.Errorf("configure proxy: %w", err)
	}
	p := &Proxy{
		opts:         opts,
		log:          opts.Logger.With("component", "credential-proxy"),
		workspaces:   map[string]*workspaceState{},
		privateHosts: map[string]bool{},
		allowedPorts: map[uint16]bool{},
	}
	for _, h := range opts.PrivateHosts {
		host, err := egress.ParseHost(h)
		if err != nil || host.IsIP() {
			return nil, fmt.Errorf("configure proxy: private host %q: must be a host name", h)
		}
		p.privateHosts[host.Name()] = true
	}
	for _, port := range opts.AllowedPorts {
		p.allowedPorts[port] = true
	}
	p.dialer = &egress.Dialer{
		Resolver:    opts.Resolver,
		Dial:        opts.Dial,
		DNSTimeout:  opts.Limits.DNSTimeout,
		DialTimeout: opts.Limits.DialTimeout,
	}
	if opts.EgressProxy != "" {
		p.via = &egress.Via{Addr: opts.EgressProxy, Dialer: p.dialer}
	}
	p.transport = p.newTransport()
	p.initRoutes()
	ws := p.workspace("")
	if len(opts.Rules) > 0 {
		set, err := mcprule.Compile(opts.Rules)
		if err != nil {
			return nil, fmt.Errorf("configure proxy: MCP rules: %w", err)
		}
		ws.rules.Store(&set)
	}
	p.srv = &http.Server{
		Handler:           p,
		ReadHeaderTimeout: opts.Limits.ReadHeaderTimeout,
		IdleTimeout:       opts.Limits.IdleTimeout,
		MaxHeaderBytes:    opts.Limits.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if kc, ok := c.(*keyedConn); ok {
				return context.WithValue(context.WithValue(ctx, workspaceKey{}, kc.ws), connKey{}, kc)
			}
			return ctx
		},
		// No WriteTimeout: it would cut long model streams. Streams end
		// when the upstream or the client ends them.
	}
	return p, nil
}

// newTransport dials every MCP/forward upstream through the egress policy.
func (p *Proxy) newTransport() *http.Transport {
	return &http.Transport{
		DialContext:           p.dialUpstream,
		TLSClientConfig:       p.opts.UpstreamTLS.Clone(),
		TLSHandshakeTimeout:   p.opts.Limits.DialTimeout,
		ResponseHeaderTimeout: p.opts.Limits.ResponseHeaderTimeout,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   16,
		DisableCompression:    true, // relay bytes as they are; never buffer to decompress
		Proxy:                 nil,  // never chain to HTTP_PROXY from the environment
	}
}

// dialUpstream is the transports' DialContext: addr is "host:port" as the
// proxy itself set it, re-parsed and dialed through the checked dialer.
func (p *Proxy) dialUpstream(ctx context.Context, _, addr string) (net.Conn, error) {
	host, port, err := egress.ParseAuthority(addr, 0)
	if err != nil {
		return nil, fmt.Errorf("dial %q: %w", addr, err)
	}
	c, err := p.dial(ctx, host, port)
	if err != nil {
		return nil, err
	}
	if a := auditFrom(ctx); a != nil {
		a.resolved = c.Addr.String()
	}
	return c, nil
}

// dial reaches host:port the one way the policy allows: a PrivateHosts
// entry (a VPC endpoint) directly, anything else through the egress tier
// when one is configured, else directly. Either way the address is checked
// before it is dialed (here, or by the egress tier).
func (p *Proxy) dial(ctx context.Context, host egress.Host, port uint16) (*egress.Conn, error) {
	private := p.privateHosts[host.Name()]
	t := egress.Target{Host: host, Port: port, AllowPrivate: private}
	if p.via != nil && !private {
		return p.via.DialContext(ctx, t)
	}
	return p.dialer.DialContext(ctx, t)
}

type (
	workspaceKey struct{}
	connKey      struct{}
)

// workspace returns (creating) the state for key.
func (p *Proxy) workspace(key string) *workspaceState {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.workspaceLocked(key)
}

func (p *Proxy) workspaceLocked(key string) *workspaceState {
	ws, ok := p.workspaces[key]
	if !ok {
		ws = &workspaceState{key: key, conns: map[net.Conn]struct{}{},
			tunnels: make(chan struct{}, p.opts.Limits.MaxTunnels),
			bedrock: make(chan struct{}, p.opts.Limits.MaxBedrockInFlight)}
		empty := mcprule.Set{}
		ws.rules.Store(&empty)
		p.workspaces[key] = ws
	}
	return ws
}

// SetRules replaces the MCP rules of workspace key; the next request uses
// them. Rules are validated first: an invalid set changes nothing.
func (p *Proxy) SetRules(key string, rules []MCPRule) error {
	set, err := mcprule.Compile(rules)
	if err != nil {
		return fmt.Errorf("set MCP rules: %w", err)
	}
	p.workspace(key).rules.Store(&set)
	p.log.Info("mcp rules set", "workspace", key, "rules", mcprule.List(set.Rules()))
	return nil
}

// Serve serves the default workspace ("", sidecar mode) on ln until
// Shutdown. It returns http.ErrServerClosed after Shutdown.
func (p *Proxy) Serve(ln net.Listener) error {
	return p.serve(ln, p.workspace(""))
}

func (p *Proxy) serve(ln net.Listener, ws *workspaceState) error {
	return p.srv.Serve(&keyedListener{Listener: ln, ws: ws, p: p})
}

// Shutdown stops every listener, waits for in-flight requests until ctx
// ends, then closes what remains (tunnels, streams).
func (p *Proxy) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	err := p.srv.Shutdown(ctx)
	if errors.Is(err, net.ErrClosed) {
		// A workspace's listener was closed (Close(key)) while shutting
		// down: that listener is done, which is what Shutdown wants.
		err = nil
	}
	p.mu.Lock()
	adminSrv := p.adminSrv
	p.mu.Unlock()
	if adminSrv != nil {
		_ = adminSrv.Shutdown(ctx)
	}
	p.mu.Lock()
	for _, ws := range p.workspaces {
		ws.closeConns()
	}
	p.mu.Unlock()
	if err != nil {
		_ = p.srv.Close()
	}
	p.wg.Wait()
	p.transport.CloseIdleConnections()
	if t, ok := p.opts.Bedrock.Transport.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
	if err != nil {
		return fmt.Errorf("shut down proxy: %w", err)
	}
	return nil
}

// Run blocks until ctx is cancelled, then shuts the proxy down with a 10s
// drain (host mode: run it in workspaced's errgroup).
func (p *Proxy) Run(ctx context.Context) error {
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return p.Shutdown(sctx)
}

// keyedListener tags every accepted connection with its workspace and
// tracks it, so Close(key) can end that workspace's connections
// (including hijacked CONNECT tunnels).
type keyedListener struct {
	net.Listener
	ws *workspaceState
	p  *Proxy
}

func (l *keyedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	kc := &keyedConn{Conn: c, ws: l.ws, p: l.p}
	l.ws.connMu.Lock()
	l.ws.conns[kc] = struct{}{}
	l.ws.connMu.Unlock()
	return kc, nil
}

type keyedConn struct {
	net.Conn
	ws   *workspaceState
	p    *Proxy
	once sync.Once
	// handlers counts this connection's requests in ServeHTTP: while one
	// runs, Write never inspects what it writes (refusals.go).
	handlers atomic.Int32
}

func (c *keyedConn) Close() error {
	c.once.Do(func() {
		c.ws.connMu.Lock()
		delete(c.ws.conns, c)
		c.ws.connMu.Unlock()
	})
	return c.Conn.Close()
}

// CloseWrite half-closes when the underlying connection can.
func (c *keyedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.New("half-close not supported")
}

func (ws *workspaceState) closeConns() {
	ws.connMu.Lock()
	conns := make([]net.Conn, 0, len(ws.conns))
	for c := range ws.conns {
		conns = append(conns, c)
	}
	ws.connMu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

// ServeHTTP routes one request. Routes are decided here, before anything
// is proxied.
func (p *Proxy) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	ws, _ := r.Context().Value(workspaceKey{}).(*workspaceState)
	if ws == nil {
		ws = p.workspace("")
	}
	if kc, ok := r.Context().Value(connKey{}).(*keyedConn); ok {
		kc.handlers.Add(1)
		defer kc.handlers.Add(-1)
		if r.Method != http.MethodConnect { // a CONNECT's connection is hijacked or denied
			// Runs before the decrement: relayed bytes are on the wire
			// before Write may inspect the connection's bytes again.
			defer func() { _ = http.NewResponseController(rw).Flush() }()
		}
	}
	a := &audit{id: newRequestID(), workspace: ws.key, method: r.Method, route: routeInvalid, start: time.Now()}
	w := &countingWriter{ResponseWriter: rw, a: a}
	w.Header().Set("X-Proxy-Request-Id", a.id)
	r = r.WithContext(withAudit(r.Context(), a))
	if r.Body != nil {
		r.Body = &countingBody{rc: r.Body, a: a}
	}
	defer func() {
		if a.status == 0 {
			a.status = w.status
		}
		p.finish(a)
	}()

	limit := p.opts.Limits.MaxHeaderBytes
	if r.Method == http.MethodConnect {
		limit = p.opts.Limits.MaxConnectHeaderBytes
	}
	if headerBytes(r) > limit {
		deny(w, a, http.StatusRequestHeaderFieldsTooLarge, "header_too_large", "request header block over the limit")
		return
	}
	switch {
	case r.Method == http.MethodConnect:
		a.route = routeConnect
		p.serveConnect(w, r, ws, a)
	case r.RequestURI == "*":
		deny(w, a, http.StatusBadRequest, "bad_request_target", "asterisk-form is not proxied")
	case !strings.HasPrefix(r.RequestURI, "/"):
		p.serveAbsolute(w, r, ws, a)
	default:
		p.serveOrigin(w, r, ws, a)
	}
}

// headerBytes approximates the size of the request line and header block.
func headerBytes(r *http.Request) int {
	n := len(r.Method) + len(r.RequestURI) + len(r.Host) + 16
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}
