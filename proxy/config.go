package proxy

import (
	"github.com/workspaced/workspaced/proxy/proxyconfig"
)

// Config is the proxy's policy as the environment states it, shared by
// workspaced (Docker mode) and cmd/credential-proxy (the ECS sidecar).
type Config = proxyconfig.Config

// OptionsFromConfig returns the Options c states. The Bedrock region is
// BEDROCK_REGION, else awsRegion (the process's AWS_REGION); empty turns
// the Bedrock route off. The caller adds what the environment does not
// hold: Logger, Metrics, Bedrock credentials, and (sidecar) the admin token
// and initial rules. Every binary that runs a proxy builds its Options
// here, so one environment gives one policy.
func OptionsFromConfig(c Config, awsRegion string) Options {
	region := c.BedrockRegion
	if region == "" {
		region = awsRegion
	}
	l := c.Limits
	return Options{
		Allowlist:    c.DomainAllowlist.Allowlist,
		AllowedPorts: c.AllowedPorts,
		PrivateHosts: c.PrivateHosts,
		EgressProxy:  c.EgressProxy,
		Bedrock: BedrockOptions{
			Region:   region,
			Upstream: c.BedrockUpstream.URL,
			Models:   c.BedrockModels,
		},
		Limits: Limits{
			MaxHeaderBytes:        l.MaxHeaderBytes,
			MaxConnectHeaderBytes: l.MaxConnectHeaderBytes,
			MaxBedrockBody:        l.MaxBedrockBody,
			ReadHeaderTimeout:     l.ReadHeaderTimeout,
			BodyReadTimeout:       l.BodyReadTimeout,
			IdleTimeout:           l.IdleTimeout,
			DNSTimeout:            l.DNSTimeout,
			DialTimeout:           l.DialTimeout,
			TunnelIdleTimeout:     l.TunnelIdleTimeout,
			MaxTunnels:            l.MaxTunnels,
			MaxBedrockInFlight:    l.MaxBedrockInFlight,
			ResponseHeaderTimeout: l.ResponseHeaderTimeout,
		},
		LogAllRequests: c.LogAllRequests,
	}
}

// SidecarOptions returns the Options of the ECS sidecar
// (cmd/credential-proxy): OptionsFromConfig of its policy with its
// AWS_REGION, plus what only a sidecar has, the admin token (when the
// admin API is enabled) and the default workspace's initial MCP rules.
func SidecarOptions(s proxyconfig.Sidecar) Options {
	o := OptionsFromConfig(s.Proxy, s.AWSRegion)
	if rules := s.MCPRules.Rules(); len(rules) > 0 {
		o.Rules = rules
	}
	o.AdminToken = s.AdminTokenIfEnabled()
	return o
}
