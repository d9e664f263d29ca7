package config

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/workspaced/workspaced/config/envconf"
)

func TestLoadFromDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := LoadFrom(map[string]string{})
	if err != nil {
		t.Fatalf("LoadFrom: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"runtime", cfg.Runtime, RuntimeDocker},
		{"bus", cfg.Bus.Kind, BusGoChannel},
		{"addr", cfg.HTTP.Addr, ":8000"},
		{"socket base", cfg.Docker.SocketBasePath, "/var/run/workspace-sockets"},
		{"heartbeat", cfg.HTTP.Heartbeat, 15 * time.Second},
		{"pids", cfg.Docker.PidsLimit, int64(256)},
		{"memory", cfg.Docker.MemoryMiB, int64(2048)},
		{"cpus", cfg.Docker.CPUs, 2.0},
		{"body cap", cfg.HTTP.MaxBodyBytes, int64(1 << 20)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestLoadFromValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string // substring; "" means valid
	}{
		{"ecs complete", map[string]string{"CONTAINER_MANAGER_TYPE": "ecs", "ECS_CLUSTER_NAME": "c", "ECS_WORKSPACE_SUBNETS": "subnet-1,subnet-2"}, ""},
		{"ecs without cluster", map[string]string{"CONTAINER_MANAGER_TYPE": "ecs", "ECS_WORKSPACE_SUBNETS": "s"}, "ECS_CLUSTER_NAME"},
		{"ecs without subnets", map[string]string{"CONTAINER_MANAGER_TYPE": "ecs", "ECS_CLUSTER_NAME": "c"}, "ECS_WORKSPACE_SUBNETS"},
		{"launch type and capacity provider", map[string]string{"CONTAINER_MANAGER_TYPE": "ecs", "ECS_CLUSTER_NAME": "c", "ECS_WORKSPACE_SUBNETS": "s", "ECS_LAUNCH_TYPE": "EC2", "ECS_CAPACITY_PROVIDER": "cp"}, "mutually exclusive"},
		{"unknown runtime", map[string]string{"CONTAINER_MANAGER_TYPE": "k8s"}, "CONTAINER_MANAGER_TYPE"},
		{"unknown bus", map[string]string{"BUS": "kafka"}, "BUS"},
		{"pool max below min", map[string]string{"WARM_POOL_MIN_SIZE": "3", "WARM_POOL_MAX_SIZE": "2"}, "WARM_POOL_MAX_SIZE"},
		{"bad duration", map[string]string{"WORKSPACE_IDLE_TTL": "soon"}, "WORKSPACE_IDLE_TTL"},
		{"bad level", map[string]string{"LOG_LEVEL": "loud"}, "LOG_LEVEL"},
		{"proxy allowlist", map[string]string{"PROXY_DOMAIN_WHITELIST": "a.example, *.com"}, "PROXY_DOMAIN_WHITELIST"},
		{"proxy limit", map[string]string{"PROXY_MAX_TUNNELS": "0"}, "PROXY_MAX_TUNNELS"},
		{"proxy upstream", map[string]string{"BEDROCK_UPSTREAM_URL": "bedrock.example"}, "BEDROCK_UPSTREAM_URL"},
		{"pprof on its own port", map[string]string{"PPROF_ADDR": "127.0.0.1:6060"}, ""},
		{"pprof on the API port", map[string]string{"HTTP_ADDR": ":8000", "PPROF_ADDR": ":8000"}, "PPROF_ADDR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := LoadFrom(tt.env)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("want error mentioning %q, got none", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("error %q does not mention %q", err, tt.wantErr)
			}
		})
	}
}

// Lists have one grammar in every binary (envconf.List).
func TestListGrammar(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"subnet-1,subnet-2", "subnet-1, subnet-2", "subnet-1 subnet-2", "subnet-1,,subnet-2\n"} {
		cfg, err := LoadFrom(map[string]string{"ECS_WORKSPACE_SUBNETS": v, "PROXY_PRIVATE_HOSTS": v})
		if err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		want := []string{"subnet-1", "subnet-2"}
		if !slices.Equal(cfg.ECS.Subnets, want) || !slices.Equal(cfg.Proxy.PrivateHosts, want) {
			t.Errorf("%q: subnets %q, private hosts %q", v, cfg.ECS.Subnets, cfg.Proxy.PrivateHosts)
		}
	}
}

func TestSecretNeverPrints(t *testing.T) {
	t.Parallel()
	cfg, err := LoadFrom(map[string]string{"API_KEYS": "acme:sk-very-secret", "REDIS_PASSWORD": "hunter2"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Auth.APIKeys.Reveal() != "acme:sk-very-secret" {
		t.Fatalf("Reveal = %q", cfg.Auth.APIKeys.Reveal())
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "config", cfg, "keys", cfg.Auth.APIKeys)
	printed := buf.String() + fmt.Sprintf("%v %+v %s", cfg, cfg, cfg.Redis.Password)
	for _, secret := range []string{"sk-very-secret", "hunter2"} {
		if strings.Contains(printed, secret) {
			t.Errorf("secret %q printed: %s", secret, printed)
		}
	}
}

// TestEveryVariableDocumented keeps docs/configuration.md in step with Config.
func TestEveryVariableDocumented(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatalf("read docs: %v", err)
	}
	vars, err := Variables()
	if err != nil {
		t.Fatal(err)
	}
	if len(vars) < 20 {
		t.Fatalf("only %d variables found; tag parsing broke?", len(vars))
	}
	for _, v := range vars {
		if !strings.Contains(string(doc), "`"+v.Key+"`") {
			t.Errorf("docs/configuration.md does not document `%s`", v.Key)
		}
	}
}

// TestFieldNamesUnique keeps parse errors naming exactly one variable:
// the library reports the Go field, envconf maps its name back.
func TestFieldNamesUnique(t *testing.T) {
	t.Parallel()
	if dup := envconf.DuplicateFieldNames[Config](); len(dup) > 0 {
		t.Errorf("field names used twice: %v", dup)
	}
}
