package main

import (
	"fmt"

	"github.com/workspaced/workspaced/proxy"
	"github.com/workspaced/workspaced/proxy/proxyconfig"
)

// config is the sidecar's parsed environment (proxyconfig.Sidecar,
// documented in docs/configuration.md) and the proxy Options it states.
type config struct {
	proxyconfig.Sidecar
	// Options is proxy.SidecarOptions: the policy built exactly as
	// workspaced builds its in-process proxy's, plus the sidecar's admin
	// token and initial MCP rules.
	Options proxy.Options
	// BedrockEnabled is true when a region is known: only then are AWS
	// credentials loaded.
	BedrockEnabled bool
}

// parseConfig reads the environment.
func parseConfig(environ map[string]string) (config, error) {
	s, err := proxyconfig.LoadSidecar(environ)
	if err != nil {
		return config{}, fmt.Errorf("configuration: %w", err)
	}
	o := proxy.SidecarOptions(s)
	return config{Sidecar: s, Options: o, BedrockEnabled: o.Bedrock.Region != ""}, nil
}
