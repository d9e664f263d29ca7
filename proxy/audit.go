package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Route kinds, the "route" of audit lines and metrics.
const (
	routeHealth  = "health"
	routeBedrock = "bedrock"
	routeMCP     = "mcp"
	routeForward = "forward"
	routeConnect = "connect"
	routeAdmin   = "admin"
	routeInvalid = "invalid"
)

// audit is the one structured record written per decision. It never holds
// header values, bodies or query strings.
type audit struct {
	id        string
	workspace string
	route     string
	method    string
	host      string
	port      uint16
	path      string // without the query
	resolved  string
	rule      string
	decision  string // allow | deny
	reason    string
	status    int
	bytesUp   atomic.Int64 // client → upstream
	bytesDown atomic.Int64 // upstream → client
	start     time.Time
	upstream  time.Duration // time to upstream response headers
}

type auditKey struct{}

func withAudit(ctx context.Context, a *audit) context.Context {
	return context.WithValue(ctx, auditKey{}, a)
}

func auditFrom(ctx context.Context) *audit {
	a, _ := ctx.Value(auditKey{}).(*audit)
	return a
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// redactPath drops the query string: queries carry tokens (D9).
func redactPath(p string) string {
	if i := strings.IndexByte(p, '?'); i >= 0 {
		return p[:i] + "?<redacted>"
	}
	return p
}

func (p *Proxy) finish(a *audit) {
	if a.decision == "" {
		a.decision = "allow"
	}
	if a.reason == "" {
		a.reason = "ok"
	}
	m := p.opts.Metrics
	m.Decisions.WithLabelValues(a.route, a.decision, a.reason).Inc()
	m.Bytes.WithLabelValues(a.route, "upstream").Add(float64(a.bytesUp.Load()))
	m.Bytes.WithLabelValues(a.route, "downstream").Add(float64(a.bytesDown.Load()))
	dur := time.Since(a.start)
	m.Duration.WithLabelValues(a.route).Observe(dur.Seconds())
	if a.route == routeHealth && !p.opts.LogAllRequests {
		return
	}
	level := slog.LevelInfo
	if a.decision == "deny" {
		level = slog.LevelWarn
	}
	p.log.LogAttrs(context.Background(), level, "proxy decision",
		slog.String("request_id", a.id),
		slog.String("workspace", a.workspace),
		slog.String("route", a.route),
		slog.String("method", a.method),
		slog.String("host", a.host),
		slog.Int("port", int(a.port)),
		slog.String("path", a.path),
		slog.String("resolved_addr", a.resolved),
		slog.String("rule", a.rule),
		slog.String("decision", a.decision),
		slog.String("reason", a.reason),
		slog.Int("status", a.status),
		slog.Int64("bytes_up", a.bytesUp.Load()),
		slog.Int64("bytes_down", a.bytesDown.Load()),
		slog.Int64("upstream_ms", a.upstream.Milliseconds()),
		slog.Int64("duration_ms", dur.Milliseconds()),
	)
}

// deny answers with status, a JSON error body and the X-Proxy-Error
// header, and records the reason. It is the only way a request is refused.
func deny(w http.ResponseWriter, a *audit, status int, reason, msg string) {
	a.decision = "deny"
	a.reason = reason
	a.status = status
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Proxy-Error", reason)
	h.Set("X-Content-Type-Options", "nosniff")
	if status == http.StatusMethodNotAllowed {
		h.Set("Allow", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS")
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": reason, "message": msg, "request_id": a.id})
}

// countingWriter counts response bytes and keeps http.ResponseController
// working (Flush, Hijack) through Unwrap.
type countingWriter struct {
	http.ResponseWriter
	a      *audit
	status int
}

func (w *countingWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.a.bytesDown.Add(int64(n))
	return n, err
}

func (w *countingWriter) Flush() {
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// countingBody counts request body bytes read.
type countingBody struct {
	rc interface {
		Read([]byte) (int, error)
		Close() error
	}
	a *audit
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.a.bytesUp.Add(int64(n))
	return n, err
}

func (b *countingBody) Close() error { return b.rc.Close() }

func portString(p uint16) string { return strconv.Itoa(int(p)) }
