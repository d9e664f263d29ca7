package main

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
)

func TestSecretsIn(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"the agent's own variables", map[string]string{"WORKSPACE_LISTEN_MODE": "tcp", "HOME": "/home/appuser",
			"CLAUDE_CODE_SKIP_BEDROCK_AUTH": "1", "ECS_CONTAINER_METADATA_URI_V4": "http://169.254.170.2/v4/x",
			"HTTP_PROXY": "http://127.0.0.1:8080", "AWS_REGION": "us-east-1"}, nil},
		{"AWS keys by name", map[string]string{"AWS_SECRET_ACCESS_KEY": "x", "AWS_SESSION_TOKEN": "y"}, []string{"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}},
		{"empty value is no secret", map[string]string{"ANTHROPIC_API_KEY": ""}, nil},
		{"key-looking value under any name", map[string]string{"FOO": "AKIAABCDEFGHIJKLMNOP", "BAR": "sk-ant-api03-abcdefgh"}, []string{"BAR", "FOO"}},
		{"generic suffixes", map[string]string{"GITHUB_ACCESS_TOKEN": "x", "DB_PASSWORD": "y", "MCP_SERVER_TOKEN": "z"}, []string{"DB_PASSWORD", "GITHUB_ACCESS_TOKEN", "MCP_SERVER_TOKEN"}},
		{"task role pointer", map[string]string{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/x"}, []string{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := secretsIn(tt.env); !slices.Equal(got, tt.want) {
				t.Errorf("secretsIn = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestIsSecretFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name, path, content string
		want                bool
	}{
		{"aws credentials file", ".aws/credentials", "[default]\n", true},
		{"credentials outside .aws", "notes/credentials", "todo\n", false},
		{"netrc", ".netrc", "machine x", true},
		{"private key", "id", "-----BEGIN OPENSSH PRIVATE KEY-----\nabc", true},
		{"dotenv with a secret", ".env", "aws_secret_access_key = x", true},
		{"npm token", ".npmrc", `{"_authToken": "x"}`, true},
		{"source code", "main.go", "package main // AWS_SECRET_ACCESS_KEY is read from the env", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := filepath.Join(dir, tt.name, tt.path)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if got := isSecretFile(p); got != tt.want {
				t.Errorf("isSecretFile(%s) = %v, want %v", tt.path, got, tt.want)
			}
		})
	}
}

func TestMountInfoHelpers(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, want string }{
		{`/a\040b`, "/a b"},
		{`/plain`, "/plain"},
		{`/odd\04`, `/odd\04`},
	} {
		if got := unescape(tt.in); got != tt.want {
			t.Errorf("unescape(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	for _, tt := range []struct{ in, want string }{
		{"9223372036854771712", "max"},
		{"2147483648", "2147483648"},
	} {
		if got := v1Unlimited(tt.in); got != tt.want {
			t.Errorf("v1Unlimited(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestTinyHolderIsAnELF(t *testing.T) {
	t.Parallel()
	if runtime.GOARCH != "amd64" {
		t.Skipf("the tiny holder is amd64 code; this is %s", runtime.GOARCH) // an architecture, not a missing dependency
	}
	p, err := tinyHolder(t.TempDir())
	if err != nil {
		t.Fatalf("tinyHolder: %v", err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 129 || string(b[1:4]) != "ELF" {
		t.Errorf("holder is %d bytes starting %q", len(b), b[:4])
	}
}
