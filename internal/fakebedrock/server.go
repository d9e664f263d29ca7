// Package fakebedrock is a stand-in for the Amazon Bedrock runtime API that
// speaks its wire format: TLS, SigV4 signatures verified with the real
// algorithm against test credentials (requests that do not verify are
// rejected the way Bedrock rejects them), InvokeModel answered with an
// Anthropic Messages JSON body, and InvokeModelWithResponseStream answered
// with a real application/vnd.amazon.eventstream body whose frames are
// spaced in time. For tests only.
package fakebedrock

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Service is the SigV4 signing name of the Bedrock runtime.
const Service = "bedrock"

// Options tune a Server.
type Options struct {
	// Names are the DNS names the TLS certificate covers, besides
	// 127.0.0.1 and ::1. Default: bedrock-runtime.<region>.amazonaws.com.
	Names []string
	// FrameDelay spaces the frames of a streamed response. Default 10ms.
	FrameDelay time.Duration
	// Gate, when set, holds a streamed response after its first frame
	// until Gate is closed (or receives), so a test can check that the
	// first frame arrived before the upstream finished.
	Gate <-chan struct{}
	// Now is the clock used for the signature-skew check. Default time.Now.
	Now func() time.Time
	// Listen is the address to listen on. Default "127.0.0.1:0"; e.g. the
	// Docker bridge gateway ("172.17.0.1:0") for a sidecar in a container,
	// which then reaches it by one of Names (mapped to that address in its
	// /etc/hosts).
	Listen string
}

// Request is what the server recorded about one request.
type Request struct {
	Method    string
	RawTarget string // the request target exactly as it came off the wire
	ModelID   string // decoded model id from the path
	Operation string // invoke, invoke-with-response-stream, converse, ...
	Header    http.Header
	Host      string
	Body      []byte
	Verified  bool
	Error     string // why verification failed
}

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	// URL is https://<listen address> (https://127.0.0.1:port by default).
	URL string
	// Addr is the listener address (127.0.0.1:port by default).
	Addr string

	creds  aws.Credentials
	region string
	opts   Options
	srv    *httptest.Server
	pool   *x509.CertPool
	cert   *x509.Certificate

	conns    atomic.Int64
	requests atomic.Int64
	accepted atomic.Int64
	rejected atomic.Int64

	mu   sync.Mutex
	last []Request
}

// New starts a fake Bedrock for region that accepts only requests signed
// with creds, and closes it at test cleanup.
func New(t testing.TB, creds aws.Credentials, region string, opts ...Options) *Server {
	t.Helper()
	s := &Server{creds: creds, region: region}
	if len(opts) > 0 {
		s.opts = opts[0]
	}
	if len(s.opts.Names) == 0 {
		s.opts.Names = []string{"bedrock-runtime." + region + ".amazonaws.com"}
	}
	if s.opts.FrameDelay == 0 {
		s.opts.FrameDelay = 10 * time.Millisecond
	}
	if s.opts.Now == nil {
		s.opts.Now = time.Now
	}
	cert, pool, err := SelfSigned(s.opts.Names...)
	if err != nil {
		t.Fatalf("fakebedrock: certificate: %v", err)
	}
	s.pool = pool
	s.cert = cert.Leaf
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serveHTTP))
	if s.opts.Listen != "" {
		ln, err := net.Listen("tcp", s.opts.Listen)
		if err != nil {
			t.Fatalf("fakebedrock: listen on %s: %v", s.opts.Listen, err)
		}
		_ = s.srv.Listener.Close()
		s.srv.Listener = ln
	}
	s.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	s.srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.srv.StartTLS()
	s.URL = s.srv.URL
	s.Addr = s.srv.Listener.Addr().String()
	t.Cleanup(s.srv.Close)
	return s
}

// Certificate is the server's self-signed certificate (add it to a pool
// that also trusts other test upstreams).
func (s *Server) Certificate() *x509.Certificate { return s.cert }

// CertPool trusts the server's certificate.
func (s *Server) CertPool() *x509.CertPool { return s.pool }

// Client returns an HTTP client that trusts the server (for direct,
// proxy-less baselines).
func (s *Server) Client() *http.Client {
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig:    &tls.Config{RootCAs: s.pool, MinVersion: tls.VersionTLS12},
		DisableCompression: true,
	}}
}

// Conns counts accepted TCP connections.
func (s *Server) Conns() int64 { return s.conns.Load() }

// Requests counts requests received; Accepted those whose signature
// verified; Rejected those refused.
func (s *Server) Requests() int64 { return s.requests.Load() }

// Accepted counts requests whose signature verified.
func (s *Server) Accepted() int64 { return s.accepted.Load() }

// Rejected counts requests refused (bad signature, unknown route).
func (s *Server) Rejected() int64 { return s.rejected.Load() }

// Last returns the most recent request, if any.
func (s *Server) Last() (Request, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.last) == 0 {
		return Request{}, false
	}
	return s.last[len(s.last)-1], true
}

// All returns every recorded request (at most the last 1000).
func (s *Server) All() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.last...)
}

func (s *Server) record(r Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = append(s.last, r)
	if len(s.last) > 1000 {
		s.last = s.last[len(s.last)-1000:]
	}
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	body, err := io.ReadAll(io.LimitReader(r.Body, 32<<20))
	if err != nil {
		s.rejected.Add(1)
		awsError(w, http.StatusBadRequest, "ValidationException", "read body")
		return
	}
	rec := Request{Method: r.Method, RawTarget: r.RequestURI, Header: r.Header.Clone(), Host: r.Host, Body: body}
	model, op, ok := parseRoute(r)
	rec.ModelID, rec.Operation = model, op
	if err := Verify(r, r.RequestURI, body, s.creds, Service, s.region, s.opts.Now()); err != nil {
		rec.Error = err.Error()
		s.record(rec)
		s.rejected.Add(1)
		awsError(w, http.StatusForbidden, "InvalidSignatureException",
			"The request signature we calculated does not match the signature you provided.")
		return
	}
	rec.Verified = true
	if !ok || r.Method != http.MethodPost {
		rec.Error = "unknown operation"
		s.record(rec)
		s.rejected.Add(1)
		awsError(w, http.StatusNotFound, "UnknownOperationException", "unknown operation")
		return
	}
	s.record(rec)
	s.accepted.Add(1)
	switch op {
	case "invoke":
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Amzn-Bedrock-Input-Token-Count", "12")
		w.Header().Set("X-Amzn-Bedrock-Output-Token-Count", "5")
		_ = json.NewEncoder(w).Encode(messageResponse(model))
	case "converse":
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(converseResponse())
	case "invoke-with-response-stream":
		s.stream(w, r, model)
	default:
		awsError(w, http.StatusNotFound, "UnknownOperationException", "operation not faked: "+op)
	}
}

// parseRoute reads /model/{modelId}/{operation} from the raw path.
func parseRoute(r *http.Request) (model, op string, ok bool) {
	rest, found := strings.CutPrefix(r.URL.EscapedPath(), "/model/")
	if !found {
		return "", "", false
	}
	i := strings.LastIndexByte(rest, '/')
	if i <= 0 {
		return "", "", false
	}
	m, err := pathUnescape(rest[:i])
	if err != nil {
		return "", "", false
	}
	return m, rest[i+1:], true
}

func awsError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-Errortype", typ)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}
