// Package admin is the backend's side of the credential proxy's admin API
// (sidecar mode): it derives a task's admin secret and sets the MCP rules
// of a claimed warm-pool task.
//
// The secret never crosses the network. Each request carries an
// HMAC-SHA256 over its method, path, timestamp and body hash, keyed by the
// secret; the proxy verifies it in constant time, rejects timestamps more
// than MaxSkew away, and accepts a rule set only with a version greater
// than the one it holds (so a captured request cannot be replayed to roll
// rules back). See docs/security.md.
package admin

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/workspaced/workspaced/proxy/mcprule"
)

// Wire constants of the admin API.
const (
	RulesPath       = "/v1/mcp-rules"
	TimestampHeader = "X-Proxy-Admin-Timestamp"
	SignatureHeader = "X-Proxy-Admin-Signature"
	MaxSkew         = 5 * time.Minute
	MaxBody         = 256 << 10
	derivationLabel = "workspaced credential-proxy admin v1\x00"
)

// Errors of Client.SetRules.
var (
	ErrUnauthorized = errors.New("admin: signature refused")
	ErrStale        = errors.New("admin: a newer rule set is already applied")
	ErrRejected     = errors.New("admin: request rejected")
)

// DeriveAdminToken derives a task's admin secret from the backend key and
// the task's RunTask clientToken: hex(HMAC-SHA256(key, label||clientToken)).
// Any backend replica holding key recomputes it; nothing is stored. The
// ECS runtime puts it in the proxy container's environment only
// (PROXY_ADMIN_TOKEN), never the agent's.
func DeriveAdminToken(key []byte, clientToken string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(derivationLabel))
	m.Write([]byte(clientToken))
	return hex.EncodeToString(m.Sum(nil))
}

// Sign computes the request signature: hex(HMAC-SHA256(token,
// method\npath\ntimestamp\nhex(sha256(body)))).
func Sign(token, method, path string, timestamp int64, body []byte) string {
	sum := sha256.Sum256(body)
	m := hmac.New(sha256.New, []byte(token))
	fmt.Fprintf(m, "%s\n%s\n%d\n%s", method, path, timestamp, hex.EncodeToString(sum[:]))
	return "v1=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a signature in constant time and the timestamp window.
func Verify(token, method, path, timestampHeader, signature string, body []byte, now time.Time) error {
	if token == "" {
		return fmt.Errorf("%w: admin API disabled", ErrUnauthorized)
	}
	ts, err := strconv.ParseInt(timestampHeader, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: bad timestamp", ErrUnauthorized)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > MaxSkew || d < -MaxSkew {
		return fmt.Errorf("%w: timestamp outside the window", ErrUnauthorized)
	}
	want := Sign(token, method, path, ts, body)
	if !hmac.Equal([]byte(want), []byte(signature)) {
		return fmt.Errorf("%w: bad signature", ErrUnauthorized)
	}
	return nil
}

// RulesRequest is the body of PUT /v1/mcp-rules.
type RulesRequest struct {
	// Version must exceed the version the proxy holds.
	Version uint64         `json:"version"`
	Rules   []mcprule.Rule `json:"rules"`
}

// RulesResponse is the body of every answer to PUT /v1/mcp-rules.
type RulesResponse struct {
	Version uint64 `json:"version"`
	Error   string `json:"error,omitempty"`
}

// Client calls a proxy's admin API. The zero value is usable.
type Client struct {
	HTTPClient *http.Client     // default: a client with a 10s timeout
	Now        func() time.Time // default time.Now
}

// SetRules replaces the MCP rules of the task whose admin API is at
// baseURL (e.g. http://10.0.1.5:9001), signing with token. The version is
// the current time in nanoseconds; if the proxy already holds a newer one
// (clock skew between replicas) it retries once just above it.
func (c *Client) SetRules(ctx context.Context, baseURL, token string, rules []mcprule.Rule) error {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	version := uint64(now().UnixNano())
	resp, err := c.put(ctx, baseURL, token, RulesRequest{Version: version, Rules: rules})
	if errors.Is(err, ErrStale) && resp.Version >= version {
		_, err = c.put(ctx, baseURL, token, RulesRequest{Version: resp.Version + 1, Rules: rules})
	}
	return err
}

func (c *Client) put(ctx context.Context, baseURL, token string, body RulesRequest) (RulesResponse, error) {
	hc := c.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	if body.Rules == nil {
		body.Rules = []mcprule.Rule{}
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return RulesResponse{}, fmt.Errorf("encode rules: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, strings.TrimSuffix(baseURL, "/")+RulesPath, bytes.NewReader(raw))
	if err != nil {
		return RulesResponse{}, fmt.Errorf("build admin request: %w", err)
	}
	ts := now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(TimestampHeader, strconv.FormatInt(ts, 10))
	req.Header.Set(SignatureHeader, Sign(token, http.MethodPut, RulesPath, ts, raw))
	resp, err := hc.Do(req)
	if err != nil {
		return RulesResponse{}, fmt.Errorf("set proxy rules: %w", err)
	}
	defer resp.Body.Close()
	var out RulesResponse
	_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&out)
	switch {
	case resp.StatusCode == http.StatusOK:
		return out, nil
	case resp.StatusCode == http.StatusUnauthorized:
		return out, fmt.Errorf("set proxy rules: %w", ErrUnauthorized)
	case resp.StatusCode == http.StatusConflict:
		return out, fmt.Errorf("set proxy rules: %w (proxy holds version %d)", ErrStale, out.Version)
	default:
		return out, fmt.Errorf("set proxy rules: %w: status %d: %s", ErrRejected, resp.StatusCode, out.Error)
	}
}
