package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/workspaced/workspaced/proxy/mcprule"
	"github.com/workspaced/workspaced/store"
)

// DefaultMCPGateway is where a workspace reaches its credential proxy:
// the agent's forwarder on Docker, the sidecar on ECS.
const DefaultMCPGateway = "http://127.0.0.1:8080"

// RulesSync gives a ready conversation's workspace the conversation's
// current MCP rules if its proxy holds another set (workers.Personaliser).
type RulesSync interface {
	SyncRules(ctx context.Context, conv store.Conversation) error
}

// mcpConfig is the result of rewriting an execute's mcp_config.
type mcpConfig struct {
	// config is what the agent gets: gateway URLs, no headers.
	config json.RawMessage
	// rules are the headers taken out, as proxy rules (secrets).
	rules []mcprule.Rule
}

// rewriteMCP turns the execute body's Claude Code MCP configuration
// ({"mcpServers": {name: {"type": "http", "url": "https://...", "headers":
// {...}}}}) into what the workspace may see and what only its proxy may
// hold: each remote server that carries headers becomes a proxy rule
// (host, port and path prefix from its URL, its headers) and its URL the
// proxy's gateway URL http://127.0.0.1:8080/mcp/{host[:port]}/{path}; the
// headers are dropped, so no token reaches the workspace. Servers without
// headers (and stdio servers) pass unchanged. Everything else in the
// object is kept. Invalid input is a 400 that never echoes header values.
func rewriteMCP(raw json.RawMessage, gateway string) (mcpConfig, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return mcpConfig{}, badRequest("mcp_config must be a JSON object")
	}
	serversRaw, ok := top["mcpServers"]
	if !ok {
		return mcpConfig{config: raw}, nil
	}
	var servers map[string]map[string]json.RawMessage
	if err := json.Unmarshal(serversRaw, &servers); err != nil {
		return mcpConfig{}, badRequest("mcp_config.mcpServers must map names to server objects")
	}
	names := make([]string, 0, len(servers))
	for name := range servers {
		names = append(names, name)
	}
	sort.Strings(names) // deterministic rules: the digest only changes with the content
	var out mcpConfig
	ids := map[string]string{}
	for _, name := range names {
		rule, gw, err := serverRule(name, servers[name], gateway)
		if err != nil {
			return mcpConfig{}, err
		}
		if rule == nil {
			continue
		}
		if other, dup := ids[rule.ID()]; dup {
			return mcpConfig{}, badRequest(fmt.Sprintf("mcp servers %q and %q have the same URL", other, name))
		}
		ids[rule.ID()] = name
		out.rules = append(out.rules, *rule)
		delete(servers[name], "headers")
		servers[name]["url"], _ = json.Marshal(gw)
	}
	if _, err := mcprule.Compile(out.rules); err != nil {
		return mcpConfig{}, badRequest("mcp_config: " + err.Error())
	}
	var err error
	if top["mcpServers"], err = json.Marshal(servers); err != nil {
		return mcpConfig{}, fmt.Errorf("encode mcp servers: %w", err)
	}
	if out.config, err = json.Marshal(top); err != nil {
		return mcpConfig{}, fmt.Errorf("encode mcp config: %w", err)
	}
	return out, nil
}

// serverRule returns the rule and gateway URL of one server, or nil when
// the server has no headers (nothing to inject: it passes unchanged).
func serverRule(name string, srv map[string]json.RawMessage, gateway string) (*mcprule.Rule, string, error) {
	hraw, ok := srv["headers"]
	if !ok || bytes.Equal(bytes.TrimSpace(hraw), []byte("null")) {
		return nil, "", nil
	}
	bad := func(msg string) error { return badRequest(fmt.Sprintf("mcp server %q: %s", name, msg)) }
	var headers map[string]string
	if err := json.Unmarshal(hraw, &headers); err != nil {
		return nil, "", bad("headers must map names to strings")
	}
	if len(headers) == 0 {
		return nil, "", nil
	}
	var typ, raw string
	if t, ok := srv["type"]; ok {
		if err := json.Unmarshal(t, &typ); err != nil {
			return nil, "", bad("type must be a string")
		}
	}
	if typ != "" && typ != "http" && typ != "sse" {
		return nil, "", bad("headers are only supported on http and sse servers")
	}
	if err := json.Unmarshal(srv["url"], &raw); err != nil || raw == "" {
		return nil, "", bad("url must be a string")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.Fragment != "" {
		return nil, "", bad("url must be an absolute https:// URL without credentials (the proxy always speaks TLS upstream)")
	}
	host := strings.ToLower(u.Hostname())
	if net.ParseIP(host) != nil {
		return nil, "", bad("url must name a host, not an IP address")
	}
	port := uint16(443)
	if p := u.Port(); p != "" {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			return nil, "", bad("url port is invalid")
		}
		port = uint16(n)
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	authority := host
	if port != 443 {
		authority = net.JoinHostPort(host, strconv.Itoa(int(port)))
	}
	gw := strings.TrimSuffix(gateway, "/") + "/mcp/" + authority + path
	if u.RawQuery != "" {
		gw += "?" + u.RawQuery
	}
	return &mcprule.Rule{Host: host, Port: port, PathPrefix: path, Headers: headers}, gw, nil
}

// storeMCPRules records the conversation's rules (secrets: never logged).
func (s *Server) storeMCPRules(ctx context.Context, cid string, rules []mcprule.Rule) error {
	if rules == nil {
		rules = []mcprule.Rule{}
	}
	b, err := json.Marshal(rules)
	if err != nil {
		return fmt.Errorf("encode mcp rules: %w", err)
	}
	if _, _, err := s.opts.Store.SetMCPRules(ctx, cid, b); err != nil {
		return err
	}
	return nil
}

// syncRules makes the ready workspace's proxy hold the conversation's
// current rules before the run starts.
func (s *Server) syncRules(ctx context.Context, conv store.Conversation) *streamError {
	if s.opts.Rules == nil {
		return nil
	}
	if err := s.opts.Rules.SyncRules(ctx, conv); err != nil {
		if ctx.Err() != nil || errors.Is(err, context.Canceled) {
			return s.ended(ctx, err)
		}
		s.log.Error("mcp rules not applied", "conversation", conv.ID, "workspace", conv.Workspace, "err", err)
		return &streamError{codeUpstream, "could not configure the workspace's MCP access"}
	}
	return nil
}
