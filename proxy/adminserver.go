package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/workspaced/workspaced/proxy/admin"
	"github.com/workspaced/workspaced/proxy/mcprule"
)

// Admin failure throttling: after adminMaxFailures refused requests within
// adminFailureWindow, every admin request is refused with 429 until the
// window passes. A 256-bit secret cannot be guessed; this bounds log noise
// and CPU from a workspace hammering the port, and makes it visible.
const (
	adminMaxFailures   = 10
	adminFailureWindow = time.Minute
)

type adminState struct {
	mu       sync.Mutex
	version  uint64
	failures []time.Time
}

// ErrAdminDisabled: ServeAdmin without an AdminToken.
var ErrAdminDisabled = errors.New("proxy: admin API disabled (no admin token)")

// ServeAdmin serves the admin API for the default workspace on ln until
// Shutdown: PUT /v1/mcp-rules, signed with the admin token (package
// admin). Returns http.ErrServerClosed after Shutdown.
func (p *Proxy) ServeAdmin(ln net.Listener) error {
	if p.opts.AdminToken == "" {
		return ErrAdminDisabled
	}
	p.mu.Lock()
	if p.adminSrv == nil {
		p.adminSrv = &http.Server{
			Handler:           http.HandlerFunc(p.serveAdmin),
			ReadHeaderTimeout: p.opts.Limits.ReadHeaderTimeout,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			MaxHeaderBytes:    8 << 10,
		}
	}
	srv := p.adminSrv
	p.mu.Unlock()
	return srv.Serve(ln)
}

func (p *Proxy) serveAdmin(w http.ResponseWriter, r *http.Request) {
	ws := p.workspace("")
	a := &audit{id: newRequestID(), workspace: ws.key, route: routeAdmin, method: r.Method, path: redactPath(r.RequestURI), start: time.Now(), host: "admin"}
	defer func() {
		if a.status == 0 {
			a.status = http.StatusOK
		}
		p.finish(a)
	}()
	st := &p.admin
	if st.throttled(p.opts.Now()) {
		deny(w, a, http.StatusTooManyRequests, "admin_throttled", "too many failed admin requests")
		return
	}
	if r.RequestURI != admin.RulesPath || r.Method != http.MethodPut {
		st.fail(p.opts.Now())
		deny(w, a, http.StatusNotFound, "admin_not_found", "PUT "+admin.RulesPath+" only")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, admin.MaxBody+1))
	if err != nil || len(body) > admin.MaxBody {
		st.fail(p.opts.Now())
		deny(w, a, http.StatusRequestEntityTooLarge, "admin_body_too_large", "admin body over the limit")
		return
	}
	if err := admin.Verify(p.opts.AdminToken, r.Method, admin.RulesPath, r.Header.Get(admin.TimestampHeader),
		r.Header.Get(admin.SignatureHeader), body, p.opts.Now()); err != nil {
		st.fail(p.opts.Now())
		p.opts.Metrics.AdminAuthFailure.Inc()
		p.log.Warn("admin request refused", "request_id", a.id, "remote_addr", r.RemoteAddr, "err", err)
		deny(w, a, http.StatusUnauthorized, "admin_unauthorized", "bad or missing signature")
		return
	}
	var req admin.RulesRequest
	dec := json.NewDecoder(bytesReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		deny(w, a, http.StatusBadRequest, "admin_bad_body", "malformed rules request")
		return
	}
	set, err := mcprule.Compile(req.Rules)
	if err != nil {
		deny(w, a, http.StatusBadRequest, "admin_invalid_rules", err.Error())
		return
	}
	st.mu.Lock()
	if req.Version <= st.version {
		cur := st.version
		st.mu.Unlock()
		a.decision, a.reason, a.status = "deny", "admin_stale_version", http.StatusConflict
		writeJSON(w, http.StatusConflict, admin.RulesResponse{Version: cur, Error: "stale version"})
		return
	}
	st.version = req.Version
	ws.rules.Store(&set)
	st.mu.Unlock()
	a.rule = "mcp_rules"
	p.log.Info("mcp rules set", "workspace", ws.key, "via", "admin", "version", req.Version, "rules", mcprule.List(set.Rules()))
	writeJSON(w, http.StatusOK, admin.RulesResponse{Version: req.Version})
}

func (s *adminState) fail(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, now)
	if len(s.failures) > adminMaxFailures {
		s.failures = s.failures[len(s.failures)-adminMaxFailures:]
	}
}

func (s *adminState) throttled(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.failures) >= adminMaxFailures && now.Sub(s.failures[0]) < adminFailureWindow
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
