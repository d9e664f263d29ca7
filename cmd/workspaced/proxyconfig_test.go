package main

import (
	"maps"
	"reflect"
	"strings"
	"testing"

	"github.com/workspaced/workspaced/config"
	"github.com/workspaced/workspaced/proxy"
	"github.com/workspaced/workspaced/proxy/proxyconfig"
)

// TestSameEnvironmentSameProxy parses each environment through both
// binaries' configuration paths, workspaced's (config.LoadFrom, then
// hostProxyOptions, what newHostProxy builds its proxy from) and the ECS
// sidecar's (proxyconfig.LoadSidecar, then proxy.SidecarOptions, what
// cmd/credential-proxy's parseConfig is), and requires the same proxy
// policy. The one documented difference is the Bedrock region when only
// the AWS_REGION default applies: workspaced's AWS_REGION defaults to
// us-east-1, the sidecar's to none.
func TestSameEnvironmentSameProxy(t *testing.T) {
	t.Parallel()
	policy := map[string]string{
		"PROXY_DOMAIN_WHITELIST":         "api.github.com, *.pypi.org\nregistry.npmjs.org",
		"PROXY_ALLOWED_PORTS":            "443 8443",
		"PROXY_PRIVATE_HOSTS":            "git.internal,artifacts.internal",
		"PROXY_EGRESS_PROXY":             "egress.internal:3128",
		"BEDROCK_REGION":                 "eu-west-1",
		"BEDROCK_UPSTREAM_URL":           "https://bedrock.example:8443",
		"BEDROCK_ALLOWED_MODELS":         "anthropic.claude-*, us.anthropic.claude-sonnet-4",
		"PROXY_LOG_ALL_REQUESTS":         "true",
		"PROXY_MAX_HEADER_BYTES":         "32768",
		"PROXY_MAX_CONNECT_HEADER_BYTES": "4096",
		"PROXY_MAX_BEDROCK_BODY_BYTES":   "1048576",
		"PROXY_MAX_TUNNELS":              "8",
		"PROXY_MAX_BEDROCK_IN_FLIGHT":    "4",
		"PROXY_READ_HEADER_TIMEOUT":      "3s",
		"PROXY_BODY_READ_TIMEOUT":        "20s",
		"PROXY_IDLE_TIMEOUT":             "30s",
		"PROXY_DNS_TIMEOUT":              "2s",
		"PROXY_DIAL_TIMEOUT":             "4s",
		"PROXY_TUNNEL_IDLE_TIMEOUT":      "5m",
		"PROXY_RESPONSE_HEADER_TIMEOUT":  "90s",
	}
	with := func(extra map[string]string) map[string]string {
		m := maps.Clone(policy)
		maps.Copy(m, extra)
		return m
	}
	tests := []struct {
		name string
		env  map[string]string
		// regions, when set, are the expected Bedrock regions of
		// workspaced and of the sidecar (they differ only here).
		regions *[2]string
	}{
		{"defaults", map[string]string{}, &[2]string{"us-east-1", ""}},
		{"aws region only", map[string]string{"AWS_REGION": "us-west-2"}, nil},
		{"bedrock region wins", map[string]string{"AWS_REGION": "us-west-2", "BEDROCK_REGION": "eu-central-1"}, nil},
		{"every policy variable", policy, nil},
		{"comma-only lists", with(map[string]string{"PROXY_DOMAIN_WHITELIST": "api.github.com,*.pypi.org", "PROXY_ALLOWED_PORTS": "443,80"}), nil},
		{"sidecar-only variables change no policy", with(map[string]string{
			"PROXY_ADMIN_LISTEN": "0.0.0.0:9001", "PROXY_ADMIN_TOKEN": strings.Repeat("k", 64),
			"MCP_HEADER_RULES":  `[{"host":"mcp.example.com","headers":{"Authorization":"Bearer x"}}]`,
			"PROXY_LISTEN_PORT": "18080", "PROXY_LOG_LEVEL": "debug",
		}), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := config.LoadFrom(tt.env)
			if err != nil {
				t.Fatalf("workspaced: %v", err)
			}
			s, err := proxyconfig.LoadSidecar(tt.env)
			if err != nil {
				t.Fatalf("credential-proxy: %v", err)
			}
			host, side := hostProxyOptions(cfg), proxy.SidecarOptions(s)
			// Only a sidecar has an admin API and a default workspace.
			side.AdminToken, side.Rules = "", nil
			if tt.regions != nil {
				if host.Bedrock.Region != tt.regions[0] || side.Bedrock.Region != tt.regions[1] {
					t.Fatalf("regions = %q, %q; want %q", host.Bedrock.Region, side.Bedrock.Region, *tt.regions)
				}
				side.Bedrock.Region = host.Bedrock.Region
			}
			if !reflect.DeepEqual(host, side) {
				t.Fatalf("the binaries disagree:\nworkspaced      %+v\ncredential-proxy %+v", host, side)
			}
		})
	}
}

// TestSameEnvironmentSameRefusal: a bad proxy value stops both binaries,
// each naming the variable.
func TestSameEnvironmentSameRefusal(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, key, value string }{
		{"wildcard allowlist", "PROXY_DOMAIN_WHITELIST", "ok.example, *.com"},
		{"port zero", "PROXY_ALLOWED_PORTS", "443,0"},
		{"upstream with path", "BEDROCK_UPSTREAM_URL", "https://bedrock.example/v1"},
		{"not a bool", "PROXY_LOG_ALL_REQUESTS", "maybe"},
		{"negative limit", "PROXY_MAX_TUNNELS", "-1"},
		{"zero timeout", "PROXY_DIAL_TIMEOUT", "0s"},
		{"not a duration", "PROXY_DNS_TIMEOUT", "soon"},
		{"egress proxy without a port", "PROXY_EGRESS_PROXY", "egress.internal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{tt.key: tt.value}
			_, herr := config.LoadFrom(env)
			_, serr := proxyconfig.LoadSidecar(env)
			for bin, err := range map[string]error{"workspaced": herr, "credential-proxy": serr} {
				if err == nil || !strings.Contains(err.Error(), tt.key) {
					t.Errorf("%s: err = %v, want one naming %s", bin, err, tt.key)
				}
			}
		})
	}
}
