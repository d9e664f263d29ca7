package mcprule

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/workspaced/workspaced/proxy/egress"
)

func TestParseRejects(t *testing.T) {
	t.Parallel()
	bad := map[string]string{
		"not json":          `{`,
		"object":            `{"host":"a.example"}`,
		"unknown field":     `[{"host":"mcp.example.com","headers":{"A":"b"},"extra":1}]`,
		"no headers":        `[{"host":"mcp.example.com","headers":{}}]`,
		"bare star":         `[{"host":"*","headers":{"A":"b"}}]`,
		"public suffix":     `[{"host":"*.com","headers":{"A":"b"}}]`,
		"ip host":           `[{"host":"10.0.0.1","headers":{"A":"b"}}]`,
		"url host":          `[{"host":"https://mcp.example.com","headers":{"A":"b"}}]`,
		"dot prefix":        `[{"host":"mcp.example.com","path_prefix":"/mcp/../x","headers":{"A":"b"}}]`,
		"relative prefix":   `[{"host":"mcp.example.com","path_prefix":"mcp","headers":{"A":"b"}}]`,
		"crlf value":        `[{"host":"mcp.example.com","headers":{"A":"b\r\nX: y"}}]`,
		"bad name":          `[{"host":"mcp.example.com","headers":{"A B":"b"}}]`,
		"host header":       `[{"host":"mcp.example.com","headers":{"host":"evil.example"}}]`,
		"proxy header":      `[{"host":"mcp.example.com","headers":{"Proxy-Authorization":"x"}}]`,
		"content-length":    `[{"host":"mcp.example.com","headers":{"Content-Length":"1"}}]`,
		"port out of range": `[{"host":"mcp.example.com","port":70000,"headers":{"A":"b"}}]`,
		"trailing":          `[] []`,
	}
	for name, in := range bad {
		if _, err := Parse([]byte(in)); err == nil {
			t.Errorf("%s: Parse(%s) accepted", name, in)
		} else if name != "not json" && name != "object" && name != "unknown field" && name != "trailing" && name != "port out of range" && !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err %v does not wrap ErrInvalid", name, err)
		}
	}
	if s, err := Parse(nil); err != nil || s.Len() != 0 {
		t.Errorf("empty: %v %d", err, s.Len())
	}
}

func TestMatch(t *testing.T) {
	t.Parallel()
	s, err := Parse([]byte(`[
		{"host":"mcp.example.com","path_prefix":"/mcp","headers":{"Authorization":"Bearer exact"}},
		{"host":"*.example.com","headers":{"Authorization":"Bearer wild"}},
		{"host":"mcp.example.com","path_prefix":"/mcp/deep/","headers":{"Authorization":"Bearer deep"}},
		{"host":"alt.example.org","port":8443,"headers":{"X-Api-Key":"k"}}
	]`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		host string
		port uint16
		path string
		want string // Authorization or X-Api-Key value, "" = no match
	}{
		{"mcp.example.com", 443, "/mcp", "Bearer exact"},
		{"MCP.EXAMPLE.COM.", 443, "/mcp/x", "Bearer exact"},
		{"mcp.example.com", 443, "/mcp/deep/x", "Bearer deep"},
		{"mcp.example.com", 443, "/other", "Bearer wild"}, // wildcard rule covers "/"
		{"mcp.example.com", 8443, "/mcp", ""},             // D4 port
		{"mcp.example.com.evil.example", 443, "/mcp", ""}, // D4 host
		{"example.com", 443, "/mcp", ""},                  // apex not in *.example.com
		{"alt.example.org", 8443, "/", "k"},
		{"alt.example.org", 443, "/", ""},
	}
	for _, tt := range tests {
		h, err := egress.ParseHost(tt.host)
		if err != nil {
			t.Fatal(err)
		}
		segs, err := CanonicalPath(tt.path)
		if err != nil {
			t.Fatal(err)
		}
		m, ok := s.Match(h, tt.port, segs)
		got := ""
		if ok {
			got = m.Headers.Get("Authorization") + m.Headers.Get("X-Api-Key")
		}
		if got != tt.want {
			t.Errorf("Match(%s:%d%s) = %q; want %q", tt.host, tt.port, tt.path, got, tt.want)
		}
	}
	only, _ := Parse([]byte(`[{"host":"mcp.example.com","path_prefix":"/mcp","headers":{"A":"b"}}]`))
	h, _ := egress.ParseHost("mcp.example.com")
	for _, p := range []string{"/mcpx", "/other", "/", "/mc"} {
		segs, _ := CanonicalPath(p)
		if _, ok := only.Match(h, 443, segs); ok {
			t.Errorf("prefix /mcp matched %s", p)
		}
	}
}

func TestCanonicalPath(t *testing.T) {
	t.Parallel()
	bad := []string{"", "mcp", "/mcp/../admin", "/mcp/%2e%2e/admin", "/mcp/%2E/x", "/mcp%2f..%2fadmin",
		"/mcp/..;/admin", "/mcp\\..\\admin", "/mcp/%5c", "/mcp//x", "/mcp/%00", "/mcp/%zz", "/mcp/."}
	for _, p := range bad {
		if _, err := CanonicalPath(p); !errors.Is(err, ErrBadPath) {
			t.Errorf("CanonicalPath(%q) = %v; want ErrBadPath", p, err)
		}
	}
	good := map[string]string{"/": "", "/mcp": "mcp", "/mcp/": "mcp|", "/m%63p/x": "mcp|x", "/a;b/c": "a;b|c"}
	for p, want := range good {
		segs, err := CanonicalPath(p)
		if err != nil || strings.Join(segs, "|") != want {
			t.Errorf("CanonicalPath(%q) = %q, %v; want %q", p, segs, err, want)
		}
	}
}

func TestRuleLogValueRedacts(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	r := Rule{Host: "mcp.example.com", Headers: map[string]string{"Authorization": "Bearer s3cr3t"}}
	log.Info("rule", "rule", r, "rules", List{r})
	if strings.Contains(buf.String(), "s3cr3t") {
		t.Fatalf("secret logged: %s", buf.String())
	}
}
