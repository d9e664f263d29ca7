// Package mcprule is the vocabulary of MCP header-injection rules: what the
// backend sends (JSON), how a rule is validated, and how a request's
// destination is matched against a set of rules. It is shared by the proxy,
// its admin client and the runtimes, and imports nothing of the proxy.
package mcprule

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/workspaced/workspaced/proxy/egress"
	"golang.org/x/net/http/httpguts"
)

// ErrInvalid wraps every validation failure.
var ErrInvalid = errors.New("invalid MCP header rule")

// Limits on a rule set, to bound memory and per-request work.
const (
	MaxRules          = 64
	MaxHeadersPerRule = 16
	MaxHeaderValueLen = 8 << 10
)

// Rule injects Headers into requests for https://Host:Port/PathPrefix...
// The JSON form is:
//
//	{"host": "mcp.example.com", "port": 443, "path_prefix": "/mcp",
//	 "headers": {"Authorization": "Bearer ..."}}
//
// host is an exact name or "*.domain" (same rules as the domain allowlist);
// port defaults to 443; path_prefix defaults to "/" and matches on segment
// boundaries ("/mcp" matches "/mcp" and "/mcp/x", never "/mcpx").
type Rule struct {
	Host       string            `json:"host"`
	Port       uint16            `json:"port,omitempty"`
	PathPrefix string            `json:"path_prefix,omitempty"`
	Headers    map[string]string `json:"headers"`
}

// LogValue redacts the header values: rules are secrets.
func (r Rule) LogValue() slog.Value {
	names := make([]string, 0, len(r.Headers))
	for k := range r.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	return slog.GroupValue(
		slog.String("host", r.Host),
		slog.Int("port", int(r.Port)),
		slog.String("path_prefix", r.PathPrefix),
		slog.String("headers", strings.Join(names, ",")+" (values redacted)"),
	)
}

// ID is the rule's non-secret identity, used in audit lines.
func (r Rule) ID() string {
	port := r.Port
	if port == 0 {
		port = 443
	}
	prefix := r.PathPrefix
	if prefix == "" {
		prefix = "/"
	}
	return fmt.Sprintf("%s:%d%s", r.Host, port, prefix)
}

// forbiddenHeaders may not be injected: they frame the message, route it or
// belong to the proxy hop.
var forbiddenHeaders = map[string]bool{
	"Host": true, "Content-Length": true, "Transfer-Encoding": true, "Connection": true,
	"Keep-Alive": true, "Te": true, "Trailer": true, "Upgrade": true, "Expect": true,
	"Forwarded": true, "X-Forwarded-For": true, "X-Forwarded-Host": true, "X-Forwarded-Proto": true,
}

// compiled is a validated rule ready for matching.
type compiled struct {
	rule    Rule
	pattern egress.Pattern
	port    uint16
	prefix  []string // canonical path segments
	headers http.Header
}

// Set is an immutable, validated rule set. The zero Set matches nothing.
// Safe for concurrent use.
type Set struct {
	rules []compiled
}

// Parse decodes and validates a JSON array of rules ("" and "null" are the
// empty set). Unknown fields are errors.
func Parse(data []byte) (Set, error) {
	s := strings.TrimSpace(string(data))
	if s == "" || s == "null" {
		return Set{}, nil
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	var rules []Rule
	if err := dec.Decode(&rules); err != nil {
		return Set{}, fmt.Errorf("%w: decode: %v", ErrInvalid, err)
	}
	if dec.More() {
		return Set{}, fmt.Errorf("%w: trailing data", ErrInvalid)
	}
	return Compile(rules)
}

// Compile validates rules into a Set.
func Compile(rules []Rule) (Set, error) {
	if len(rules) > MaxRules {
		return Set{}, fmt.Errorf("%w: %d rules (max %d)", ErrInvalid, len(rules), MaxRules)
	}
	out := Set{rules: make([]compiled, 0, len(rules))}
	for i, r := range rules {
		c, err := compile(r)
		if err != nil {
			return Set{}, fmt.Errorf("rule %d: %w", i, err)
		}
		out.rules = append(out.rules, c)
	}
	return out, nil
}

func compile(r Rule) (compiled, error) {
	p, err := egress.ParsePattern(r.Host)
	if err != nil {
		return compiled{}, fmt.Errorf("%w: host: %v", ErrInvalid, err)
	}
	c := compiled{pattern: p, port: r.Port, headers: http.Header{}}
	if c.port == 0 {
		c.port = 443
	}
	prefix := r.PathPrefix
	if prefix == "" {
		prefix = "/"
	}
	segs, err := CanonicalPath(prefix)
	if err != nil {
		return compiled{}, fmt.Errorf("%w: path_prefix: %v", ErrInvalid, err)
	}
	if len(segs) > 0 && segs[len(segs)-1] == "" {
		segs = segs[:len(segs)-1] // "/mcp/" is the prefix "/mcp"
	}
	c.prefix = segs
	if len(r.Headers) == 0 || len(r.Headers) > MaxHeadersPerRule {
		return compiled{}, fmt.Errorf("%w: %d headers (want 1..%d)", ErrInvalid, len(r.Headers), MaxHeadersPerRule)
	}
	for k, v := range r.Headers {
		if !httpguts.ValidHeaderFieldName(k) {
			return compiled{}, fmt.Errorf("%w: header name %q", ErrInvalid, k)
		}
		ck := http.CanonicalHeaderKey(k)
		if forbiddenHeaders[ck] || strings.HasPrefix(ck, "Proxy-") {
			return compiled{}, fmt.Errorf("%w: header %q may not be injected", ErrInvalid, ck)
		}
		if !httpguts.ValidHeaderFieldValue(v) || len(v) > MaxHeaderValueLen {
			return compiled{}, fmt.Errorf("%w: value of header %q", ErrInvalid, ck)
		}
		c.headers.Set(ck, v)
	}
	c.rule = Rule{Host: p.String(), Port: c.port, PathPrefix: "/" + strings.Join(c.prefix, "/"), Headers: r.Headers}
	return c, nil
}

// Match is a matched rule: its identity and the headers to set.
type Match struct {
	Rule    Rule
	Headers http.Header // shared; callers must not modify
}

// Match finds the rule for host, port and canonical path segments (from
// CanonicalPath). An exact host beats a wildcard; then the longest prefix
// wins. IP-literal hosts never match.
func (s Set) Match(host egress.Host, port uint16, path []string) (Match, bool) {
	best := -1
	bestScore := -1
	for i, c := range s.rules {
		if c.port != port || !c.pattern.Match(host) || !hasPrefix(path, c.prefix) {
			continue
		}
		score := len(c.prefix)
		if !strings.HasPrefix(c.pattern.String(), "*.") {
			score += 1 << 20
		}
		if score > bestScore {
			best, bestScore = i, score
		}
	}
	if best < 0 {
		return Match{}, false
	}
	return Match{Rule: s.rules[best].rule, Headers: s.rules[best].headers}, true
}

// Len returns the number of rules.
func (s Set) Len() int { return len(s.rules) }

// Rules returns the validated rules (header values included: secret).
func (s Set) Rules() []Rule {
	out := make([]Rule, len(s.rules))
	for i, c := range s.rules {
		out[i] = c.rule
	}
	return out
}

func hasPrefix(path, prefix []string) bool {
	if len(prefix) > len(path) {
		return false
	}
	for i := range prefix {
		if path[i] != prefix[i] {
			return false
		}
	}
	return true
}

// ErrBadPath: a path that two parsers could read differently.
var ErrBadPath = errors.New("non-canonical path")

// CanonicalPath splits an escaped request path into decoded segments for
// matching. It rejects what an upstream might resolve differently from the
// proxy: dot segments (also percent-encoded or followed by ";params"),
// encoded or literal backslashes, encoded slashes, empty segments, control
// characters and invalid escapes. The path forwarded upstream is the
// original; it decodes to the same segments. "/" is zero segments; a
// trailing slash is a final empty segment.
func CanonicalPath(escaped string) ([]string, error) {
	if !strings.HasPrefix(escaped, "/") {
		return nil, fmt.Errorf("%w: must start with /", ErrBadPath)
	}
	if escaped == "/" {
		return nil, nil
	}
	raw := strings.Split(escaped[1:], "/")
	segs := make([]string, len(raw))
	for i, r := range raw {
		if r == "" && i != len(raw)-1 {
			return nil, fmt.Errorf("%w: empty segment", ErrBadPath)
		}
		d, err := url.PathUnescape(r)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadPath, err)
		}
		for j := 0; j < len(d); j++ {
			if c := d[j]; c < 0x20 || c == 0x7f || c == '/' || c == '\\' {
				return nil, fmt.Errorf("%w: forbidden character %q", ErrBadPath, c)
			}
		}
		name, _, _ := strings.Cut(d, ";")
		if name == "." || name == ".." {
			return nil, fmt.Errorf("%w: dot segment", ErrBadPath)
		}
		segs[i] = d
	}
	return segs, nil
}

// List is a slice of rules that logs redacted (slog does not resolve
// LogValuer inside a plain slice, so log a List, never a []Rule).
type List []Rule

// LogValue lists the rule identities only.
func (l List) LogValue() slog.Value {
	ids := make([]string, len(l))
	for i, r := range l {
		ids[i] = r.ID()
	}
	return slog.StringValue(strings.Join(ids, " "))
}
