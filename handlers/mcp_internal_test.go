package handlers

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/workspaced/workspaced/proxy/mcprule"
)

func TestRewriteMCP(t *testing.T) {
	t.Parallel()
	const gw = "http://127.0.0.1:8080"
	tests := []struct {
		name      string
		in        string
		wantURLs  map[string]string // server → url after rewrite
		wantRules []mcprule.Rule
		wantErr   string // substring of a 400's message
	}{
		{
			name:     "http server with headers",
			in:       `{"mcpServers":{"docs":{"type":"http","url":"https://mcp.example.com/mcp","headers":{"Authorization":"Bearer s3cret"}}}}`,
			wantURLs: map[string]string{"docs": "http://127.0.0.1:8080/mcp/mcp.example.com/mcp"},
			wantRules: []mcprule.Rule{{Host: "mcp.example.com", Port: 443, PathPrefix: "/mcp",
				Headers: map[string]string{"Authorization": "Bearer s3cret"}}},
		},
		{
			name:     "port, query, no path",
			in:       `{"mcpServers":{"a":{"type":"sse","url":"https://API.example.com:8443?x=1","headers":{"X-Key":"k"}}}}`,
			wantURLs: map[string]string{"a": "http://127.0.0.1:8080/mcp/api.example.com:8443/?x=1"},
			wantRules: []mcprule.Rule{{Host: "api.example.com", Port: 8443, PathPrefix: "/",
				Headers: map[string]string{"X-Key": "k"}}},
		},
		{
			name:     "servers without headers pass unchanged",
			in:       `{"mcpServers":{"open":{"type":"http","url":"https://open.example.com/mcp"},"local":{"command":"node","args":["x"]}},"other":1}`,
			wantURLs: map[string]string{"open": "https://open.example.com/mcp"},
		},
		{name: "no servers", in: `{"other":true}`},
		{name: "plain http", in: `{"mcpServers":{"a":{"type":"http","url":"http://mcp.example.com/","headers":{"A":"b"}}}}`, wantErr: "https"},
		{name: "ip host", in: `{"mcpServers":{"a":{"url":"https://10.0.0.1/","headers":{"A":"b"}}}}`, wantErr: "IP"},
		{name: "stdio with headers", in: `{"mcpServers":{"a":{"type":"stdio","url":"https://x.example.com/","headers":{"A":"b"}}}}`, wantErr: "http and sse"},
		{name: "header values not strings", in: `{"mcpServers":{"a":{"url":"https://x.example.com/","headers":{"A":1}}}}`, wantErr: "strings"},
		{name: "forbidden header", in: `{"mcpServers":{"a":{"url":"https://x.example.com/","headers":{"Host":"evil"}}}}`, wantErr: "may not be injected"},
		{name: "duplicate route", in: `{"mcpServers":{"a":{"url":"https://x.example.com/m","headers":{"A":"1"}},"b":{"url":"https://x.example.com/m","headers":{"A":"2"}}}}`, wantErr: "same URL"},
		{name: "not an object", in: `[1]`, wantErr: "JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := rewriteMCP(json.RawMessage(tt.in), gw)
			if tt.wantErr != "" {
				var ae *apiError
				if !errors.As(err, &ae) || ae.status != http.StatusBadRequest || !strings.Contains(ae.msg, tt.wantErr) {
					t.Fatalf("err = %v, want a 400 mentioning %q", err, tt.wantErr)
				}
				if strings.Contains(ae.msg, "s3cret") || strings.Contains(ae.msg, "evil") {
					t.Fatalf("error echoes a header value: %s", ae.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(got.config), "headers") || strings.Contains(string(got.config), "s3cret") {
				t.Fatalf("rewritten config keeps headers: %s", got.config)
			}
			var cfg struct {
				MCPServers map[string]struct {
					URL string `json:"url"`
				} `json:"mcpServers"`
			}
			if err := json.Unmarshal(got.config, &cfg); err != nil {
				t.Fatal(err)
			}
			for name, want := range tt.wantURLs {
				if cfg.MCPServers[name].URL != want {
					t.Errorf("server %s url = %q, want %q", name, cfg.MCPServers[name].URL, want)
				}
			}
			if len(got.rules) != len(tt.wantRules) {
				t.Fatalf("rules = %d, want %d", len(got.rules), len(tt.wantRules))
			}
			for i, r := range got.rules {
				w := tt.wantRules[i]
				if r.Host != w.Host || r.Port != w.Port || r.PathPrefix != w.PathPrefix || len(r.Headers) != len(w.Headers) {
					t.Errorf("rule %d = %v, want %v", i, r.ID(), w.ID())
				}
				for k, v := range w.Headers {
					if r.Headers[k] != v {
						t.Errorf("rule %d header %s differs", i, k)
					}
				}
			}
			if strings.Contains(tt.in, "other") && !strings.Contains(string(got.config), `"other"`) {
				t.Errorf("other keys dropped: %s", got.config)
			}
		})
	}
}
