package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/workspaced/workspaced/internal/fakebedrock"
	"github.com/workspaced/workspaced/proxy"
	"github.com/workspaced/workspaced/proxy/egress"
	"github.com/workspaced/workspaced/proxy/mcprule"
)

// testNet is the only network the proxy under test can reach: a resolver
// answering from a table and a dialer that maps fake public addresses to
// loopback listeners. Anything else is refused and recorded, so a broken
// policy fails the test without a packet leaving the machine.
type testNet struct {
	mu       sync.Mutex
	names    map[string][][]netip.Addr // name. → answers, rotated per lookup
	lookups  map[string]int
	routes   map[string]string // "fakeip:port" → real loopback address
	blocking map[string]bool   // "fakeip:port" whose dial hangs until the deadline
	dials    []string
	strays   []string // dials to unmapped addresses (must stay empty)
}

func newTestNet() *testNet {
	return &testNet{names: map[string][][]netip.Addr{}, lookups: map[string]int{}, routes: map[string]string{}, blocking: map[string]bool{}}
}

func (n *testNet) addName(name string, answers ...[]netip.Addr) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.names[name+"."] = answers
}

func (n *testNet) route(fake, real string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.routes[fake] = real
}

func (n *testNet) LookupNetIP(ctx context.Context, _, host string) ([]netip.Addr, error) {
	if host == "slowdns.allowed.example." {
		<-ctx.Done() // a resolver that never answers
		return nil, ctx.Err()
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	i := n.lookups[host]
	n.lookups[host]++
	a, ok := n.names[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return append([]netip.Addr(nil), a[i%len(a)]...), nil
}

func (n *testNet) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	n.mu.Lock()
	n.dials = append(n.dials, address)
	real, ok := n.routes[address]
	block := n.blocking[address]
	if !ok && !block {
		n.strays = append(n.strays, address)
	}
	n.mu.Unlock()
	if block {
		<-ctx.Done()
		return nil, &net.OpError{Op: "dial", Net: network, Err: ctx.Err()}
	}
	if !ok {
		return nil, fmt.Errorf("test network: %s is unreachable", address)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, real)
}

func (n *testNet) snapshot() (dials, strays []string, lookups int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, v := range n.lookups {
		lookups += v
	}
	return append([]string(nil), n.dials...), append([]string(nil), n.strays...), lookups
}

func (n *testNet) reset() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.dials, n.strays, n.lookups = nil, nil, map[string]int{}
}

// upstream is a test server that records what it saw and counts accepted
// connections.
type upstream struct {
	srv     *httptest.Server
	conns   atomic.Int64
	accepts chan struct{} // one value per accepted connection
	mu      sync.Mutex
	reqs    []seen
}

type seen struct {
	Method, Host, RequestURI string
	Header                   http.Header
	TLS                      bool
}

func newUpstream(t testing.TB, useTLS bool, names []string, h http.HandlerFunc) *upstream {
	t.Helper()
	u := &upstream{accepts: make(chan struct{}, 1024)}
	u.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.reqs = append(u.reqs, seen{r.Method, r.Host, r.RequestURI, r.Header.Clone(), r.TLS != nil})
		u.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = w.Write([]byte("upstream ok"))
	}))
	u.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	u.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			u.conns.Add(1)
			u.accepts <- struct{}{}
		}
	}
	if useTLS {
		cert, _, err := fakebedrock.SelfSigned(names...)
		if err != nil {
			t.Fatal(err)
		}
		u.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		u.srv.StartTLS()
		u.srv.TLS.RootCAs = x509.NewCertPool()
		u.srv.TLS.RootCAs.AddCert(cert.Leaf)
	} else {
		u.srv.Start()
	}
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) addr() string { return u.srv.Listener.Addr().String() }

func (u *upstream) requests() []seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]seen(nil), u.reqs...)
}

func addrs(s ...string) []netip.Addr {
	out := make([]netip.Addr, len(s))
	for i, a := range s {
		out[i] = netip.MustParseAddr(a)
	}
	return out
}

var (
	testCreds  = aws.Credentials{AccessKeyID: "AKIDPROXYTEST", SecretAccessKey: "proxy-secret-key-value", SessionToken: "proxy-session-token-value", Source: "test"}
	testRegion = "us-east-1"
)

// world is a proxy wired to a test network with the standard upstreams.
type world struct {
	t       testing.TB
	net     *testNet
	proxy   *proxy.Proxy
	addr    string // proxy listener
	plain   *upstream
	tls     *upstream
	mcp     *upstream
	bedrock *fakebedrock.Server
	logs    *syncBuffer
	opts    proxy.Options
}

type syncBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wrote chan struct{} // signalled after each write (capacity 1)
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.buf.Write(p)
	if b.wrote != nil {
		select {
		case b.wrote <- struct{}{}:
		default:
		}
	}
	return n, err
}

// waitCount returns the buffer once it holds n occurrences of substr, or
// when d has passed (an audit line is written after the response, so it
// may land after the client has read it).
func (b *syncBuffer) waitCount(substr string, n int, d time.Duration) string {
	b.mu.Lock()
	if b.wrote == nil {
		b.wrote = make(chan struct{}, 1)
	}
	wrote := b.wrote
	b.mu.Unlock()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		if s := b.String(); strings.Count(s, substr) >= n {
			return s
		}
		select {
		case <-wrote:
		case <-deadline.C:
			return b.String()
		}
	}
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

const mcpRulesJSON = `[{"host":"mcp.example.com","path_prefix":"/mcp","headers":{"Authorization":"Bearer mcp-secret-token"}}]`

// newWorld builds the standard world; mutate adjusts options before New.
func newWorld(t testing.TB, mutate func(*proxy.Options), fbOpts ...fakebedrock.Options) *world {
	t.Helper()
	w := &world{t: t, net: newTestNet(), logs: &syncBuffer{}}
	w.plain = newUpstream(t, false, nil, nil)
	w.tls = newUpstream(t, true, []string{"allowed.example", "api.allowed.example", "private-ok.example"}, nil)
	w.mcp = newUpstream(t, true, []string{"mcp.example.com", "alt.example.com"}, nil)
	fo := fakebedrock.Options{}
	if len(fbOpts) > 0 {
		fo = fbOpts[0]
	}
	w.bedrock = fakebedrock.New(t, testCreds, testRegion, fo)

	n := w.net
	pub := addrs("93.184.216.34")
	for _, name := range []string{"allowed.example", "api.allowed.example", "b.allowed.example"} {
		n.addName(name, pub)
	}
	n.route("93.184.216.34:80", w.plain.addr())
	n.route("93.184.216.34:443", w.tls.addr())
	n.addName("meta.allowed.example", addrs("169.254.169.254"))
	n.addName("mapped.allowed.example", addrs("::ffff:127.0.0.1"))
	n.addName("mixed.example", addrs("93.184.216.34", "10.0.0.5"))
	n.addName("rebind.example", addrs("93.184.216.34"), addrs("127.0.0.1"))
	n.addName("private.example", addrs("10.0.0.7"))
	n.addName("private-ok.example", addrs("10.0.0.9"))
	n.route("10.0.0.9:443", w.tls.addr())
	n.addName("loop-ok.example", addrs("127.0.0.1"))
	n.addName("slow.example", addrs("93.184.216.99"))
	n.mu.Lock()
	n.blocking["93.184.216.99:443"] = true
	n.mu.Unlock()
	n.addName("silent.allowed.example", addrs("93.184.216.41"))
	n.addName("mcp.example.com", addrs("93.184.216.40"))
	n.route("93.184.216.40:443", w.mcp.addr())
	n.addName("bedrock-runtime.us-east-1.amazonaws.com", addrs("93.184.216.50"))
	n.route("93.184.216.50:443", w.bedrock.Addr)

	al, err := egress.ParseAllowlist("allowed.example,*.allowed.example,mixed.example,rebind.example,private.example,private-ok.example,loop-ok.example,slow.example")
	if err != nil {
		t.Fatal(err)
	}
	w.opts = proxy.Options{
		Logger:       slog.New(slog.NewJSONHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Allowlist:    al,
		PrivateHosts: []string{"private-ok.example", "loop-ok.example"},
		Resolver:     n,
		Dial:         n.Dial,
		UpstreamTLS:  &tls.Config{RootCAs: w.rootPool(), MinVersion: tls.VersionTLS12},
		Bedrock: proxy.BedrockOptions{
			Region:      testRegion,
			Credentials: credentials.StaticCredentialsProvider{Value: testCreds},
		},
		Limits: proxy.Limits{DialTimeout: 2 * time.Second, ReadHeaderTimeout: 5 * time.Second},
	}
	rules, err := parseRules(mcpRulesJSON)
	if err != nil {
		t.Fatal(err)
	}
	w.opts.Rules = rules
	if mutate != nil {
		mutate(&w.opts)
	}
	p, err := proxy.New(w.opts)
	if err != nil {
		t.Fatal(err)
	}
	w.proxy = p
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w.addr = ln.Addr().String()
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = p.Shutdown(ctx)
		<-done
		if _, strays, _ := n.snapshot(); len(strays) > 0 {
			t.Errorf("proxy dialed unmapped addresses: %v", strays)
		}
	})
	return w
}

func (w *world) rootPool() *x509.CertPool {
	pool := x509.NewCertPool()
	for _, u := range []*upstream{w.tls, w.mcp} {
		for _, c := range u.srv.TLS.Certificates {
			pool.AddCert(c.Leaf)
		}
	}
	pool.AddCert(w.bedrock.Certificate())
	return pool
}

// upstreamConns is the total number of connections every upstream saw.
func (w *world) upstreamConns() int64 {
	return w.plain.conns.Load() + w.tls.conns.Load() + w.mcp.conns.Load() + w.bedrock.Conns()
}

// drainAccepts reports how many upstream connections were accepted since
// the last call without waiting.
func (w *world) drainAccepts() int {
	n := 0
	for _, u := range []*upstream{w.plain, w.tls, w.mcp} {
		for {
			select {
			case <-u.accepts:
				n++
				continue
			default:
			}
			break
		}
	}
	return n
}

// awaitAccept waits (with a deadline) until some upstream accepted a
// connection.
func (w *world) awaitAccept() bool {
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	select {
	case <-w.plain.accepts:
	case <-w.tls.accepts:
	case <-w.mcp.accepts:
	case <-timeout.C:
		return false
	}
	return true
}

// raw sends a request verbatim on a new connection and reads the response.
func (w *world) raw(req string) (*http.Response, string) {
	w.t.Helper()
	c, err := net.DialTimeout("tcp", w.addr, 5*time.Second)
	if err != nil {
		w.t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		w.t.Fatal(err)
	}
	var hreq *http.Request
	if strings.HasPrefix(req, "CONNECT ") {
		hreq = &http.Request{Method: http.MethodConnect}
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), hreq)
	if err != nil {
		w.t.Fatalf("read response to %q: %v", firstLine(req), err)
	}
	if hreq != nil && resp.StatusCode == http.StatusOK {
		return resp, "" // a tunnel: the body is the tunnel itself
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\r\n")
	return l
}

func parseRules(js string) ([]proxy.MCPRule, error) {
	set, err := mcprule.Parse([]byte(js))
	if err != nil {
		return nil, err
	}
	return set.Rules(), nil
}

func listenLoopback() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
