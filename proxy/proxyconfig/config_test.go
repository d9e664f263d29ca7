package proxyconfig

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/workspaced/workspaced/config/envconf"
)

func TestLoadSidecar(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		check   func(Sidecar) bool
		wantErr string // a variable the error names; "" means valid
	}{
		{"defaults", nil, func(s Sidecar) bool {
			return s.ListenAddr() == "127.0.0.1:8080" && slices.Equal(s.Proxy.AllowedPorts, Ports{443, 80}) &&
				s.Proxy.Limits.MaxBedrockBody == 10<<20 && s.Proxy.Limits.TunnelIdleTimeout == 10*time.Minute &&
				s.LogLevel == slog.LevelInfo && s.AWSRegion == "" && s.Proxy.BedrockUpstream.URL == nil
		}, ""},
		{"lists", map[string]string{
			"PROXY_DOMAIN_WHITELIST": "a.example, *.b.example c.example", "PROXY_ALLOWED_PORTS": "443, 8443",
			"PROXY_PRIVATE_HOSTS": "x.internal y.internal", "BEDROCK_ALLOWED_MODELS": "m1,m2*",
		}, func(s Sidecar) bool {
			return s.Proxy.DomainAllowlist.Len() == 3 && slices.Equal(s.Proxy.AllowedPorts, Ports{443, 8443}) &&
				slices.Equal(s.Proxy.PrivateHosts, envconf.List{"x.internal", "y.internal"}) &&
				slices.Equal(s.Proxy.BedrockModels, envconf.List{"m1", "m2*"})
		}, ""},
		{"admin", map[string]string{"PROXY_ADMIN_LISTEN": ":9001", "PROXY_ADMIN_TOKEN": strings.Repeat("t", 32)}, func(s Sidecar) bool {
			return s.AdminTokenIfEnabled() == strings.Repeat("t", 32)
		}, ""},
		{"token without admin is ignored", map[string]string{"PROXY_ADMIN_TOKEN": "short"}, func(s Sidecar) bool {
			return s.AdminTokenIfEnabled() == ""
		}, ""},
		{"upstream", map[string]string{"BEDROCK_UPSTREAM_URL": "http://127.0.0.1:4566/"}, func(s Sidecar) bool {
			return s.Proxy.BedrockUpstream.String() == "http://127.0.0.1:4566/"
		}, ""},
		{"short admin token", map[string]string{"PROXY_ADMIN_LISTEN": ":9001", "PROXY_ADMIN_TOKEN": "short"}, nil, "PROXY_ADMIN_TOKEN"},
		{"upstream path", map[string]string{"BEDROCK_UPSTREAM_URL": "https://x/v1"}, nil, "BEDROCK_UPSTREAM_URL"},
		{"zero limit", map[string]string{"PROXY_MAX_HEADER_BYTES": "0"}, nil, "PROXY_MAX_HEADER_BYTES"},
		{"bad rules", map[string]string{"MCP_HEADER_RULES": `[{"host":"x.example"}]`}, nil, "MCP_HEADER_RULES"},
		{"bad level", map[string]string{"PROXY_LOG_LEVEL": "loud"}, nil, "PROXY_LOG_LEVEL"},
		{"bad port list", map[string]string{"PROXY_ALLOWED_PORTS": "https"}, nil, "PROXY_ALLOWED_PORTS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := LoadSidecar(tt.env)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
			case tt.wantErr == "" && !tt.check(s):
				t.Fatalf("sidecar = %+v", s)
			}
		})
	}
}

// The admin token and the MCP rules' header values never print.
func TestSidecarSecretsNeverPrint(t *testing.T) {
	t.Parallel()
	token := "admin-" + strings.Repeat("s", 40)
	s, err := LoadSidecar(map[string]string{
		"PROXY_ADMIN_LISTEN": ":9001", "PROXY_ADMIN_TOKEN": token,
		"MCP_HEADER_RULES": `[{"host":"mcp.example.com","headers":{"Authorization":"Bearer mcp-secret"}}]`,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.MCPRules.Rules()) != 1 || s.MCPRules.Rules()[0].Headers["Authorization"] != "Bearer mcp-secret" {
		t.Fatalf("rules = %v", s.MCPRules.Rules())
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "config", s, "rules", s.MCPRules)
	j, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	printed := buf.String() + string(j) + fmt.Sprintf("%v %+v %#v", s, s, s)
	for _, secret := range []string{token, "mcp-secret"} {
		if strings.Contains(printed, secret) {
			t.Errorf("%q printed: %s", secret, printed)
		}
	}
	if !strings.Contains(printed, "mcp.example.com:443/") {
		t.Errorf("rule ids missing: %s", printed)
	}
}

// Every variable of the sidecar (the shared policy included) has a row in
// docs/configuration.md.
func TestEveryVariableDocumented(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	vars, err := envconf.Variables[Sidecar]()
	if err != nil {
		t.Fatal(err)
	}
	if len(vars) < 25 {
		t.Fatalf("only %d variables found; tag parsing broke?", len(vars))
	}
	for _, k := range envconf.Undocumented(vars, string(doc)) {
		t.Errorf("docs/configuration.md does not document `%s`", k)
	}
	if dup := envconf.DuplicateFieldNames[Sidecar](); len(dup) > 0 {
		t.Errorf("field names used twice (errors could not name one variable): %v", dup)
	}
}
