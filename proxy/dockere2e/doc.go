// Package dockere2e holds the end-to-end test of the credential proxy in
// host mode on the real Docker engine: a hardened, network-less workspace
// reaches a test upstream on the host only through its agent's forwarder,
// the workspace's Unix socket and the in-process proxy, which injects the
// conversation's MCP header and signs Bedrock calls — and no credential is
// visible inside the workspace. It contains tests only.
package dockere2e
