package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// signingService is the SigV4 service name of the Bedrock runtime.
const signingService = "bedrock"

// signError is a failure to sign; the request never leaves unsigned.
type signError struct {
	status int
	reason string
	err    error
}

func (e *signError) Error() string { return e.reason + ": " + e.err.Error() }
func (e *signError) Unwrap() error { return e.err }

// bedrockReq is the decided Bedrock call, carried in the context to
// Rewrite and the signing transport.
type bedrockReq struct {
	rawPath string
	body    []byte
	creds   aws.Credentials
	header  http.Header // the client headers that will be signed and sent
}

type bedrockKey struct{}

// forwardedBedrockHeader lists client headers sent (and signed) upstream.
// Everything else, including the client's Authorization, X-Amz-Date,
// X-Amz-Security-Token and X-Amz-Content-Sha256, is dropped.
func forwardedBedrockHeader(name string) bool {
	switch name {
	case "Content-Type", "Accept":
		return true
	}
	return strings.HasPrefix(name, "X-Amzn-Bedrock-")
}

func (p *Proxy) initBedrock() {
	base := p.opts.Bedrock.Transport
	if base == nil {
		base = p.newTransport()
	}
	p.bedrockProxy = &httputil.ReverseProxy{
		Rewrite:        p.rewriteBedrock,
		Transport:      &signingTransport{p: p, base: base},
		FlushInterval:  -1, // event streams are relayed frame by frame
		ErrorHandler:   p.errorHandler,
		ModifyResponse: p.modifyResponse,
	}
	if p.opts.Bedrock.Transport == nil {
		p.opts.Bedrock.Transport = base
	}
}

// serveBedrock decides a Bedrock call: operation and model allowlists,
// body cap, credentials. Only then is anything sent upstream.
func (p *Proxy) serveBedrock(w http.ResponseWriter, r *http.Request, a *audit, rawPath string) {
	b := p.opts.Bedrock
	if b.Upstream != nil {
		a.host = b.Upstream.Hostname()
	}
	model, op, ok := parseModelPath(rawPath)
	if !ok || r.Method != http.MethodPost {
		deny(w, a, http.StatusForbidden, "bedrock_operation_denied", "only POST /model/{id}/{operation} is allowed")
		return
	}
	a.rule = op
	if op == "invoke-with-bidirectional-stream" || r.Header.Get("Content-Encoding") == "aws-chunked" ||
		strings.HasPrefix(r.Header.Get("X-Amz-Content-Sha256"), "STREAMING-") {
		deny(w, a, http.StatusForbidden, "chunk_signed_refused", "chunk-signed streaming requests cannot be re-signed")
		return
	}
	if !contains(b.Operations, op) {
		deny(w, a, http.StatusForbidden, "bedrock_operation_denied", "operation "+op+" is not allowed")
		return
	}
	if strings.Contains(r.RequestURI, "?") {
		deny(w, a, http.StatusForbidden, "bedrock_query_denied", "Bedrock runtime operations take no query string")
		return
	}
	if reason := p.checkModel(model); reason != "" {
		deny(w, a, http.StatusForbidden, reason, "model is not allowed")
		return
	}
	if b.Upstream == nil {
		deny(w, a, http.StatusServiceUnavailable, "bedrock_not_configured", "no Bedrock region configured")
		return
	}
	limit := p.opts.Limits.MaxBedrockBody
	if r.ContentLength > limit {
		deny(w, a, http.StatusRequestEntityTooLarge, "body_too_large", "request body over the cap")
		return
	}
	body, status, reason := p.readBody(w, r, limit)
	if status != 0 {
		deny(w, a, status, reason, "could not read the request body")
		return
	}
	if int64(len(body)) > limit {
		deny(w, a, http.StatusRequestEntityTooLarge, "body_too_large", "request body over the cap")
		return
	}
	creds, reason := p.credentials(r.Context())
	if reason != "" {
		p.opts.Metrics.SigningFailures.WithLabelValues(reason).Inc()
		deny(w, a, http.StatusServiceUnavailable, reason, "no usable AWS credentials; request not forwarded")
		return
	}
	br := &bedrockReq{rawPath: rawPath, body: body, creds: creds, header: http.Header{}}
	for k, v := range r.Header {
		if forwardedBedrockHeader(k) {
			br.header[k] = append([]string(nil), v...)
		}
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	ctx := context.WithValue(r.Context(), bedrockKey{}, br)
	p.bedrockProxy.ServeHTTP(w, r.WithContext(ctx))
}

// readBody reads at most limit+1 bytes within BodyReadTimeout. A conn read
// deadline cannot be used for this: net/http then never sends the
// response. On timeout the answer closes the connection, which ends the
// reader goroutine.
func (p *Proxy) readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, int, string) {
	type result struct {
		body []byte
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
		ch <- result{b, err}
	}()
	t := time.NewTimer(p.opts.Limits.BodyReadTimeout)
	defer t.Stop()
	select {
	case res := <-ch:
		if res.err != nil {
			return nil, http.StatusBadRequest, "body_read_error"
		}
		return res.body, 0, ""
	case <-t.C:
		w.Header().Set("Connection", "close")
		return nil, http.StatusRequestTimeout, "body_read_timeout"
	case <-r.Context().Done():
		return nil, http.StatusBadRequest, "body_read_error"
	}
}

// credentials retrieves usable credentials or says why not.
func (p *Proxy) credentials(ctx context.Context) (aws.Credentials, string) {
	cp := p.opts.Bedrock.Credentials
	if cp == nil {
		return aws.Credentials{}, "credentials_unavailable"
	}
	cctx, cancel := context.WithTimeout(ctx, p.opts.Limits.CredentialTimeout)
	defer cancel()
	creds, err := cp.Retrieve(cctx)
	if err != nil || !creds.HasKeys() {
		return aws.Credentials{}, "credentials_unavailable"
	}
	if creds.CanExpire && !creds.Expires.After(p.opts.Now()) {
		return aws.Credentials{}, "credentials_expired"
	}
	return creds, ""
}

// parseModelPath splits /model/{id}/{op} from the raw (wire) path. The id
// is decoded; the raw form is what gets forwarded and signed.
func parseModelPath(raw string) (model, op string, ok bool) {
	rest, found := strings.CutPrefix(raw, "/model/")
	if !found {
		return "", "", false
	}
	idRaw, op, found := strings.Cut(rest, "/")
	if !found || idRaw == "" || op == "" || strings.Contains(op, "/") {
		return "", "", false
	}
	id, err := url.PathUnescape(idRaw)
	if err != nil || len(id) > 2048 {
		return "", "", false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(".:/_-", c) >= 0) {
			return "", "", false
		}
	}
	return id, op, true
}

// checkModel applies the model allowlist and, for ARNs, the region.
func (p *Proxy) checkModel(model string) string {
	if strings.HasPrefix(model, "arn:") {
		parts := strings.SplitN(model, ":", 6)
		if len(parts) < 6 || parts[2] != "bedrock" || parts[3] != p.opts.Bedrock.Region {
			return "bedrock_model_region_denied"
		}
	}
	if len(p.opts.Bedrock.Models) == 0 {
		return ""
	}
	for _, m := range p.opts.Bedrock.Models {
		if m == model || (strings.HasSuffix(m, "*") && strings.HasPrefix(model, strings.TrimSuffix(m, "*"))) {
			return ""
		}
	}
	return "bedrock_model_denied"
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// rewriteBedrock sends exactly the allowlisted client headers and the
// buffered body to the configured upstream, path as the client encoded it.
func (p *Proxy) rewriteBedrock(pr *httputil.ProxyRequest) {
	br := pr.In.Context().Value(bedrockKey{}).(*bedrockReq)
	up := p.opts.Bedrock.Upstream
	out := pr.Out
	decoded, err := url.PathUnescape(br.rawPath)
	if err != nil {
		decoded = br.rawPath
	}
	out.URL = &url.URL{Scheme: up.Scheme, Host: up.Host, Path: decoded, RawPath: br.rawPath}
	out.Host = up.Host
	out.Header = br.header.Clone()
	out.Body = io.NopCloser(bytes.NewReader(br.body))
	out.ContentLength = int64(len(br.body))
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(br.body)), nil }
	out.TransferEncoding = nil
	a := auditFrom(out.Context())
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		if a != nil {
			a.resolved = info.Conn.RemoteAddr().String()
		}
	}}
	pr.Out = out.WithContext(httptrace.WithClientTrace(out.Context(), trace))
}

// signingTransport signs each Bedrock request just before it is sent and
// refuses to send anything it could not sign.
type signingTransport struct {
	p      *Proxy
	base   http.RoundTripper
	signer *v4.Signer
}

func (t *signingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	br, ok := req.Context().Value(bedrockKey{}).(*bedrockReq)
	if !ok {
		return nil, &signError{status: http.StatusBadGateway, reason: "signing_failed", err: errors.New("no decided Bedrock request")}
	}
	// Nothing the client sent may reach the signer except the allowlisted
	// headers (the SDK signer would sign a leftover security token).
	for _, h := range []string{"Authorization", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-Sha256", "User-Agent"} {
		req.Header.Del(h)
	}
	sum := sha256.Sum256(br.body)
	signer := t.signer
	if signer == nil {
		signer = v4.NewSigner()
	}
	if err := signer.SignHTTP(req.Context(), br.creds, req, hex.EncodeToString(sum[:]), signingService,
		t.p.opts.Bedrock.Region, t.p.opts.Now()); err != nil {
		return nil, &signError{status: http.StatusBadGateway, reason: "signing_failed", err: fmt.Errorf("sign request: %w", err)}
	}
	if req.Header.Get("Authorization") == "" {
		return nil, &signError{status: http.StatusBadGateway, reason: "signing_failed", err: errors.New("signer produced no Authorization")}
	}
	return t.base.RoundTrip(req)
}
