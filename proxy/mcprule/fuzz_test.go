package mcprule

import (
	"strings"
	"testing"
)

// FuzzParse: any accepted rule set re-validates from its own Rules(), and
// no accepted header value can split a header.
func FuzzParse(f *testing.F) {
	f.Add(`[{"host":"mcp.example.com","path_prefix":"/mcp","headers":{"Authorization":"Bearer x"}}]`)
	f.Add(`[{"host":"*.example.com","port":8443,"headers":{"X-Api-Key":"k"}}]`)
	f.Add(`[{"host":"*","headers":{"A":"b"}}]`)
	f.Fuzz(func(t *testing.T, in string) {
		s, err := Parse([]byte(in))
		if err != nil {
			return
		}
		again, err := Compile(s.Rules())
		if err != nil || again.Len() != s.Len() {
			t.Fatalf("accepted rules do not re-compile: %v", err)
		}
		for _, r := range s.Rules() {
			for k, v := range r.Headers {
				if strings.ContainsAny(k+v, "\r\n\x00") {
					t.Fatalf("header %q: %q accepted", k, v)
				}
			}
		}
	})
}

// FuzzCanonicalPath: an accepted path never decodes to a dot segment or a
// slash inside a segment.
func FuzzCanonicalPath(f *testing.F) {
	for _, s := range []string{"/mcp", "/mcp/../x", "/mcp/%2e%2e/", "/a%2fb", "/..;/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		segs, err := CanonicalPath(p)
		if err != nil {
			return
		}
		for _, s := range segs {
			if s == "." || s == ".." || strings.ContainsAny(s, "/\\") {
				t.Fatalf("CanonicalPath(%q) accepted segment %q", p, s)
			}
		}
	})
}
