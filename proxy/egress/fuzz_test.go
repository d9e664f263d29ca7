package egress

import (
	"strings"
	"testing"
)

// FuzzParseAuthority: whatever the input, a parsed host is normalised
// (idempotent, lowercase LDH or IP literal) and the port is in range.
func FuzzParseAuthority(f *testing.F) {
	for _, s := range []string{"allowed.example:443", "[::1]:443", "::1", "API.EXAMPLE.:80", "127.1:80",
		"bücher.example:443", "a\x00b:1", "[fe80::1%25eth0]:80", "x:65536", "0x7f.1:22"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, p, err := ParseAuthority(s, 0)
		if err != nil {
			return
		}
		if p == 0 {
			t.Fatalf("port 0 accepted from %q", s)
		}
		again, err := ParseHost(h.String())
		if err != nil || again != h {
			t.Fatalf("not idempotent: %q -> %q -> %v, %v", s, h.String(), again, err)
		}
		if !h.IsIP() {
			for _, c := range h.Name() {
				if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
					t.Fatalf("name %q from %q has %q", h.Name(), s, c)
				}
			}
		}
	})
}

// FuzzAllowlistMatch: a wildcard matches only on a label boundary and never
// the apex; an exact entry matches only itself; IP literals never match.
func FuzzAllowlistMatch(f *testing.F) {
	f.Add("*.allowed.example", "api.allowed.example")
	f.Add("*.allowed.example", "evilallowed.example")
	f.Add("allowed.example", "allowed.example.evil.example")
	f.Add("*.com", "a.com")
	f.Add("allowed.example", "93.184.216.34")
	f.Fuzz(func(t *testing.T, entry, host string) {
		p, err := ParsePattern(entry)
		if err != nil {
			return
		}
		h, err := ParseHost(host)
		if err != nil || !p.Match(h) {
			return
		}
		if h.IsIP() {
			t.Fatalf("%q matched IP %q", entry, host)
		}
		if p.wildcard {
			if !strings.HasSuffix(h.Name(), "."+p.suffix) {
				t.Fatalf("%q matched %q off a label boundary", entry, h.Name())
			}
		} else if h.Name() != p.suffix {
			t.Fatalf("exact %q matched %q", entry, h.Name())
		}
	})
}
