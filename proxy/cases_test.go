package proxy_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func connect(target string) string {
	return fmt.Sprintf("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
}

func get(absURL string) string {
	return fmt.Sprintf("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", absURL)
}

func originReq(method, path, host string, extra ...string) string {
	h := ""
	for _, e := range extra {
		h += e + "\r\n"
	}
	return fmt.Sprintf("%s %s HTTP/1.1\r\nHost: %s\r\n%sContent-Length: 2\r\nConnection: close\r\n\r\n{}", method, path, host, h)
}

type proxyCase struct {
	id, name string
	req      string
	status   int
	reason   string // X-Proxy-Error, when denied by the proxy
	// upstream: whether an upstream connection is expected. Every deny
	// asserts that no upstream saw a connection and nothing was dialed.
	upstream bool
}

// TestProxyCases runs every example of PROXY-CASES.md that is a single
// request, plus cases of our own for each principle. A deny asserts the
// status, the proxy error header, and that no upstream was dialed.
func TestProxyCases(t *testing.T) {
	cases := []proxyCase{
		// Principle 1: decide on the resolved address.
		{"A1", "connect loopback", connect("127.0.0.1:22"), 403, "ip_literal", false},
		{"A1", "get loopback", get("http://127.0.0.1/"), 403, "ip_literal", false},
		{"A1", "get v6 loopback", get("http://[::1]/"), 403, "ip_literal", false},
		{"A2", "connect metadata", connect("169.254.169.254:80"), 403, "ip_literal", false},
		{"A2", "get metadata", get("http://169.254.169.254/latest/meta-data/"), 403, "ip_literal", false},
		{"A2", "allowlisted name resolving to metadata", connect("meta.allowed.example:443"), 403, "address_denied_metadata", false},
		{"A2", "forward to name resolving to metadata", get("http://meta.allowed.example/latest/meta-data/"), 403, "address_denied_metadata", false},
		{"A4", "mapped metadata literal", connect("[::ffff:169.254.169.254]:443"), 403, "ip_literal", false},
		{"A4", "mapped loopback literal", get("http://[::ffff:127.0.0.1]/"), 403, "ip_literal", false},
		{"A4", "mapped private literal", connect("[::ffff:10.0.0.1]:443"), 403, "ip_literal", false},
		{"A4", "name resolving to mapped loopback", connect("mapped.allowed.example:443"), 403, "address_denied_embedded_ipv4_loopback", false},
		{"A8", "10/8", connect("10.0.0.1:443"), 403, "ip_literal", false},
		{"A8", "172.16/12", get("http://172.16.0.1/"), 403, "ip_literal", false},
		{"A8", "192.168/16", connect("192.168.1.1:443"), 403, "ip_literal", false},
		{"A8", "fc00::/7", connect("[fc00::1]:443"), 403, "ip_literal", false},
		{"A12", "public and private answer", connect("mixed.example:443"), 403, "address_denied_private", false},
		{"A17", "allowlisted name resolving to private", connect("private.example:443"), 403, "address_denied_private", false},
		{"A17", "explicit private allowance", connect("private-ok.example:443"), 200, "", true},
		{"A17", "allowance never covers loopback", connect("loop-ok.example:443"), 403, "address_denied_loopback", false},
		{"A18", "public IP literal", connect("93.184.216.34:443"), 403, "ip_literal", false},
		{"A19", "ssh port", connect("allowed.example:22"), 403, "port_not_allowed", false},
		{"A19", "redis port", connect("allowed.example:6379"), 403, "port_not_allowed", false},
		{"A19", "port 0", connect("allowed.example:0"), 400, "bad_host", false},
		{"A19", "port 65536", connect("allowed.example:65536"), 400, "bad_host", false},
		{"A19", "named port", connect("allowed.example:https"), 400, "", false}, // refused by net/http's own parser
		{"A19", "forward to port 8080", get("http://allowed.example:8080/"), 403, "port_not_allowed", false},
		// Principle 2: normalise before matching.
		{"B1", "trailing dot", connect("api.allowed.example.:443"), 200, "", true},
		{"B2", "upper case", connect("API.ALLOWED.EXAMPLE:443"), 200, "", true},
		{"B2", "upper case forward", get("http://ALLOWED.EXAMPLE./x"), 200, "", true},
		{"B3", "suffix without dot", connect("evilallowed.example:443"), 403, "host_not_allowed", false},
		{"B3", "allowed as prefix", connect("allowed.example.evil.example:443"), 403, "host_not_allowed", false},
		{"B7", "percent-encoded NUL", connect("allowed.example%00.evil:443"), 400, "", false},
		{"B7", "backslash", connect("allowed.example\\evil:443"), 400, "", false},
		{"B7", "control character", "CONNECT allowed\x01example:443 HTTP/1.1\r\nHost: x\r\n\r\n", 400, "", false},
		{"B7", "space", "CONNECT allowed example:443 HTTP/1.1\r\nHost: x\r\n\r\n", 400, "", false},
		{"B7", "forward host with backslash", get("http://allowed.example\\@evil.example/"), 400, "", false},
		{"B7", "literal NUL", "CONNECT allowed\x00example:443 HTTP/1.1\r\nHost: x\r\n\r\n", 400, "", false},
		{"B7", "forward host with control character", "GET http://allowed\x07example/ HTTP/1.1\r\nHost: x\r\n\r\n", 400, "", false},
		{"B7", "forward host with NUL", "GET http://allowed.example%00.evil/ HTTP/1.1\r\nHost: x\r\n\r\n", 400, "", false},
		{"B7", "mcp gateway host with backslash", originReq("GET", "/mcp/mcp.example.com%5C.evil/mcp", "127.0.0.1"), 400, "bad_host", false},
		{"B9", "bracketed v6 loopback", connect("[::1]:443"), 403, "ip_literal", false},
		{"B9", "unbracketed v6", connect("::1"), 400, "", false},
		{"B9", "short IPv4 form", connect("127.1:443"), 400, "bad_host", false},
		// Principle 3: IP literals never match a domain rule.
		{"P3", "decimal IPv4", get("http://2130706433/"), 400, "bad_host", false},
		{"P3", "mcp gateway to IP literal", originReq("GET", "/mcp/93.184.216.40/mcp", "127.0.0.1:8080"), 403, "ip_literal", false},
		// C: routes.
		{"C2", "bedrock route with foreign Host", originReq("POST", "/model/m/invoke", "evil.example"), 403, "host_mismatch", false},
		{"C2", "mcp gateway with foreign Host", originReq("GET", "/mcp/mcp.example.com/mcp", "evil.example"), 403, "host_mismatch", false},
		{"C2", "absolute-form to another host", get("http://evil.example/mcp"), 403, "host_not_allowed", false},
		{"C4", "origin-form to forward listener", originReq("GET", "/foo", "127.0.0.1:8080"), 400, "not_a_route", false},
		{"C4", "health only on its own path", originReq("GET", "/health/x", "127.0.0.1:8080"), 400, "not_a_route", false},
		// D: injection routes.
		{"D4", "rule used on another path", originReq("GET", "/mcp/mcp.example.com/other", "127.0.0.1"), 403, "no_mcp_rule", false},
		{"D4", "rule used on another port", originReq("GET", "/mcp/mcp.example.com:8443/mcp", "127.0.0.1"), 403, "no_mcp_rule", false},
		{"D4", "rule host as prefix", originReq("GET", "/mcp/mcp.example.com.evil.example/mcp", "127.0.0.1"), 403, "no_mcp_rule", false},
		{"D4", "prefix without boundary", originReq("GET", "/mcp/mcp.example.com/mcpx", "127.0.0.1"), 403, "no_mcp_rule", false},
		{"D4", "dot segment escapes prefix", originReq("GET", "/mcp/mcp.example.com/mcp/../admin", "127.0.0.1"), 400, "bad_path", false},
		{"D4", "encoded dot segment", originReq("GET", "/mcp/mcp.example.com/mcp/%2e%2e/admin", "127.0.0.1"), 400, "bad_path", false},
		{"D4", "absolute-form on another path", get("http://mcp.example.com/other"), 403, "host_not_allowed", false},
		{"D4", "absolute-form on port 8443", get("http://mcp.example.com:8443/mcp"), 403, "host_not_allowed", false},
		{"D6", "TRACE on injected route", originReq("TRACE", "/mcp/mcp.example.com/mcp", "127.0.0.1"), 405, "method_not_allowed", false},
		{"D6", "TRACK on injected route", originReq("TRACK", "/mcp/mcp.example.com/mcp", "127.0.0.1"), 405, "method_not_allowed", false},
		{"D6", "TRACE absolute-form injected", "TRACE http://mcp.example.com/mcp HTTP/1.1\r\nHost: mcp.example.com\r\n\r\n", 405, "method_not_allowed", false},
		{"D8", "https in absolute form", get("https://api.allowed.example/"), 400, "tls_in_absolute_form", false},
		{"D8", "other scheme", get("ftp://api.allowed.example/"), 400, "bad_scheme", false},
		// F4: Bedrock operation allowlist.
		{"F4", "guardrail", originReq("POST", "/guardrail/g1/version/1/apply", "127.0.0.1:8080"), 403, "bedrock_operation_denied", false},
		{"F4", "GET /", originReq("GET", "/", "127.0.0.1:8080"), 403, "bedrock_operation_denied", false},
		{"F4", "GET on invoke", originReq("GET", "/model/m/invoke", "127.0.0.1:8080"), 403, "bedrock_operation_denied", false},
		{"F4", "async invoke", originReq("POST", "/async-invoke", "127.0.0.1:8080"), 403, "bedrock_operation_denied", false},
		{"F4", "control plane", originReq("GET", "/foundation-models", "127.0.0.1:8080"), 403, "bedrock_operation_denied", false},
		{"F4", "ARN of another region", originReq("POST", "/model/arn%3Aaws%3Abedrock%3Aeu-west-1%3A123456789012%3Ainference-profile%2Fx/invoke", "127.0.0.1:8080"), 403, "bedrock_model_region_denied", false},
		{"F4", "another region's endpoint", connect("bedrock-runtime.eu-west-1.amazonaws.com:443"), 403, "host_not_allowed", false},
		{"F4", "bidirectional stream", originReq("POST", "/model/m/invoke-with-bidirectional-stream", "127.0.0.1:8080"), 403, "chunk_signed_refused", false},
		{"F4", "chunk-signed body", originReq("POST", "/model/m/invoke", "127.0.0.1:8080", "X-Amz-Content-Sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD"), 403, "chunk_signed_refused", false},
		{"F4", "query string", originReq("POST", "/model/m/invoke?x=1", "127.0.0.1:8080"), 403, "bedrock_query_denied", false},
		{"G4", "NXDOMAIN", connect("nx.allowed.example:443"), 502, "dns_error", false},
		{"G4", "NXDOMAIN forward", get("http://nx.allowed.example/"), 502, "dns_error", false},
	}
	w := newWorld(t, nil)
	for _, tc := range cases {
		t.Run(tc.id+"/"+tc.name, func(t *testing.T) {
			w.net.reset()
			w.drainAccepts()
			before := w.bedrock.Conns()
			resp, body := w.raw(tc.req)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d; want %d (body %s)", resp.StatusCode, tc.status, body)
			}
			if tc.reason != "" && resp.Header.Get("X-Proxy-Error") != tc.reason {
				t.Errorf("X-Proxy-Error %q; want %q", resp.Header.Get("X-Proxy-Error"), tc.reason)
			}
			if tc.status >= 400 && tc.reason != "" && !strings.Contains(body, tc.reason) {
				t.Errorf("error body %q lacks the reason", body)
			}
			dials, strays, _ := w.net.snapshot()
			if !tc.upstream {
				got := w.drainAccepts() + int(w.bedrock.Conns()-before)
				if got != 0 || len(dials) != 0 {
					t.Fatalf("denied request reached the network: %d upstream connections, dials %v", got, dials)
				}
			} else if len(dials) == 0 || !w.awaitAccept() {
				t.Fatalf("allowed request reached no upstream (dials %v)", dials)
			}
			if len(strays) > 0 {
				t.Fatalf("dialed unmapped addresses %v", strays)
			}
		})
	}
	if !strings.Contains(w.logs.String(), `"decision":"deny"`) {
		t.Error("no audit line with a deny reason")
	}
}

func TestReverseResolveNever(t *testing.T) { // A18
	w := newWorld(t, nil)
	resp, _ := w.raw(connect("93.184.216.34:443"))
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if _, _, lookups := w.net.snapshot(); lookups != 0 {
		t.Fatalf("IP-literal CONNECT made %d DNS lookups", lookups)
	}
}
