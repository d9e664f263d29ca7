package agent

import (
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/workspaced/workspaced/config/envconf"
)

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		check   func(Options) bool
		wantErr string // a variable the error names; "" means valid
	}{
		{"tcp", map[string]string{"WORKSPACE_LISTEN_MODE": "tcp", "WORKSPACE_LISTEN_PORT": "9001"}, func(o Options) bool {
			return o.ListenMode == ListenTCP && o.TCPAddr == ":9001"
		}, ""},
		{"tcp host", map[string]string{"WORKSPACE_LISTEN_MODE": "tcp", "WORKSPACE_LISTEN_HOST": "127.0.0.1"}, func(o Options) bool {
			return o.TCPAddr == "127.0.0.1:9000"
		}, ""},
		{"docker", map[string]string{
			"WORKSPACE_SOCKET_PATH": "/var/run/ws/agent.sock", "WORKSPACE_PROXY_SOCKET": "/var/run/ws/proxy.sock",
			"WORKSPACE_KILL_GRACE": "3s", "WORKSPACE_MAX_TAR_BYTES": "1024", "WORKSPACE_AWS_REGION": "eu-west-1",
			"WORKSPACE_RUN_TIMEOUT": "10m",
		}, func(o Options) bool {
			return o.SocketPath == "/var/run/ws/agent.sock" && o.ProxySocket == "/var/run/ws/proxy.sock" &&
				o.KillGrace == 3*time.Second && o.MaxTarBytes == 1024 && o.DefaultTimeout == 10*time.Minute &&
				slices.Equal(o.ExtraEnv, []string{"AWS_REGION=eu-west-1"})
		}, ""},
		{"bad port", map[string]string{"WORKSPACE_LISTEN_PORT": "http"}, nil, "WORKSPACE_LISTEN_PORT"},
		{"port out of range", map[string]string{"WORKSPACE_LISTEN_PORT": "65536"}, nil, "WORKSPACE_LISTEN_PORT"},
		{"bad mode", map[string]string{"WORKSPACE_LISTEN_MODE": "udp"}, nil, "WORKSPACE_LISTEN_MODE"},
		{"bad grace", map[string]string{"WORKSPACE_KILL_GRACE": "soon"}, nil, "WORKSPACE_KILL_GRACE"},
		{"negative timeout", map[string]string{"WORKSPACE_RUN_TIMEOUT": "-1s"}, nil, "WORKSPACE_RUN_TIMEOUT"},
		{"bad tar limit", map[string]string{"WORKSPACE_MAX_TAR_BYTES": "-1"}, nil, "WORKSPACE_MAX_TAR_BYTES"},
		{"bad level", map[string]string{"WORKSPACE_LOG_LEVEL": "loud"}, nil, "WORKSPACE_LOG_LEVEL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := LoadConfig(tt.env)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
			case tt.wantErr == "" && !tt.check(c.Options()):
				t.Fatalf("options = %+v", c.Options())
			}
		})
	}
}

// The environment's defaults (Config's envDefault tags, which the docs
// list) are Options' zero-value defaults.
func TestConfigDefaultsAreOptionsDefaults(t *testing.T) {
	t.Parallel()
	c, err := LoadConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.LogLevel != slog.LevelInfo {
		t.Errorf("LogLevel = %v", c.LogLevel)
	}
	logger := slog.New(slog.DiscardHandler)
	fromEnv, zero := c.Options(), Options{}
	fromEnv.Logger, zero.Logger = logger, logger
	if got, want := fromEnv.withDefaults(), zero.withDefaults(); !reflect.DeepEqual(got, want) {
		t.Fatalf("defaults differ:\nenvironment %+v\nOptions{}   %+v", got, want)
	}
}

func TestEveryVariableDocumented(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	vars, err := envconf.Variables[Config]()
	if err != nil {
		t.Fatal(err)
	}
	if len(vars) < 14 {
		t.Fatalf("only %d variables found; tag parsing broke?", len(vars))
	}
	for _, k := range envconf.Undocumented(vars, string(doc)) {
		t.Errorf("docs/configuration.md does not document `%s`", k)
	}
	if dup := envconf.DuplicateFieldNames[Config](); len(dup) > 0 {
		t.Errorf("field names used twice: %v", dup)
	}
}
