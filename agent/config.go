package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/workspaced/workspaced/config/envconf"
)

// Config is the agent's environment (cmd/workspace-agent), parsed with
// envconf like every binary's, documented in docs/configuration.md. The
// defaults are Options' (a test keeps them equal). None of it reaches a
// run: runs get a fixed environment plus AWS_REGION when AWSRegion is set.
type Config struct {
	ListenMode string `env:"WORKSPACE_LISTEN_MODE" envDefault:"uds"`
	SocketPath string `env:"WORKSPACE_SOCKET_PATH" envDefault:"/var/run/ws/agent.sock"`
	// ListenHost and ListenPort are the address of tcp mode; an empty
	// host is every interface.
	ListenHost string `env:"WORKSPACE_LISTEN_HOST"`
	ListenPort uint16 `env:"WORKSPACE_LISTEN_PORT" envDefault:"9000"`
	// ProxySocket, when set, turns on the 127.0.0.1:8080 → proxy.sock
	// forwarder (Docker).
	ProxySocket string `env:"WORKSPACE_PROXY_SOCKET"`
	ProxyListen string `env:"WORKSPACE_PROXY_LISTEN" envDefault:"127.0.0.1:8080"`
	WorkDir     string `env:"WORKSPACE_DIR" envDefault:"/workspace"`
	ClaudePath  string `env:"WORKSPACE_CLAUDE_PATH" envDefault:"claude"`
	RunPath     string `env:"WORKSPACE_RUN_PATH" envDefault:"/usr/local/bin:/usr/bin:/bin"`
	// AWSRegion is passed to runs as AWS_REGION (Claude Code on Bedrock
	// needs a region; it is not a secret).
	AWSRegion   string        `env:"WORKSPACE_AWS_REGION"`
	KillGrace   time.Duration `env:"WORKSPACE_KILL_GRACE" envDefault:"5s"`
	RunTimeout  time.Duration `env:"WORKSPACE_RUN_TIMEOUT" envDefault:"0s"`
	MaxTarBytes int64         `env:"WORKSPACE_MAX_TAR_BYTES" envDefault:"1073741824"`
	// RunLogBytes bounds the current run's event log (the backend resumes
	// a relay from it).
	RunLogBytes int        `env:"WORKSPACE_RUN_LOG_BYTES" envDefault:"16777216"`
	LogLevel    slog.Level `env:"WORKSPACE_LOG_LEVEL" envDefault:"info"`
}

// LoadConfig parses and validates the agent's environment.
func LoadConfig(environ map[string]string) (Config, error) {
	c, err := envconf.Parse[Config](environ)
	if err != nil {
		return Config{}, err
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Validate reports every bad value at once.
func (c Config) Validate() error {
	var errs []error
	if c.ListenMode != ListenUDS && c.ListenMode != ListenTCP {
		errs = append(errs, fmt.Errorf("WORKSPACE_LISTEN_MODE %q: want %s or %s", c.ListenMode, ListenUDS, ListenTCP))
	}
	if c.KillGrace < 0 {
		errs = append(errs, errors.New("WORKSPACE_KILL_GRACE must not be negative"))
	}
	if c.RunTimeout < 0 {
		errs = append(errs, errors.New("WORKSPACE_RUN_TIMEOUT must not be negative"))
	}
	if c.MaxTarBytes <= 0 {
		errs = append(errs, errors.New("WORKSPACE_MAX_TAR_BYTES must be positive"))
	}
	if c.RunLogBytes <= 0 {
		errs = append(errs, errors.New("WORKSPACE_RUN_LOG_BYTES must be positive"))
	}
	return errors.Join(errs...)
}

// Options returns the server options c states; the caller adds Logger,
// Version and Subreaper.
func (c Config) Options() Options {
	o := Options{
		ListenMode:     c.ListenMode,
		SocketPath:     c.SocketPath,
		TCPAddr:        net.JoinHostPort(c.ListenHost, strconv.Itoa(int(c.ListenPort))),
		ProxySocket:    c.ProxySocket,
		ProxyListen:    c.ProxyListen,
		WorkDir:        c.WorkDir,
		ClaudePath:     c.ClaudePath,
		Path:           c.RunPath,
		KillGrace:      c.KillGrace,
		DefaultTimeout: c.RunTimeout,
		MaxTarBytes:    c.MaxTarBytes,
		RunLogBytes:    c.RunLogBytes,
	}
	if c.AWSRegion != "" {
		o.ExtraEnv = []string{"AWS_REGION=" + c.AWSRegion}
	}
	return o
}
