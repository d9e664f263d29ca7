package files

import (
	"errors"
	"path"
	"strings"
	"testing"
	"time"
)

func TestNewLayoutRefusesHostileSegments(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                 string
		tenant, conversation string
		ok                   bool
	}{
		{name: "plain", tenant: "acme", conversation: "c-1_A", ok: true},
		{name: "dots inside", tenant: "acme.corp", conversation: "v1.2", ok: true},
		{name: "unicode letters", tenant: "ünï", conversation: "c1", ok: true},
		{name: "empty tenant", tenant: "", conversation: "c1"},
		{name: "empty conversation", tenant: "acme", conversation: ""},
		{name: "dot", tenant: ".", conversation: "c1"},
		{name: "dot dot tenant", tenant: "..", conversation: "c1"},
		{name: "dot dot conversation", tenant: "acme", conversation: ".."},
		{name: "slash", tenant: "acme/other", conversation: "c1"},
		{name: "leading slash", tenant: "/acme", conversation: "c1"},
		{name: "traversal", tenant: "acme", conversation: "../../other-tenant/c1"},
		{name: "trailing slash", tenant: "acme", conversation: "c1/"},
		{name: "backslash", tenant: `acme\..`, conversation: "c1"},
		{name: "NUL", tenant: "acme\x00", conversation: "c1"},
		{name: "newline", tenant: "acme", conversation: "c1\nmanifest.json"},
		{name: "tab", tenant: "ac\tme", conversation: "c1"},
		{name: "space", tenant: "acme corp", conversation: "c1"},
		{name: "DEL", tenant: "acme\x7f", conversation: "c1"},
		{name: "invalid UTF-8", tenant: "acme\xff", conversation: "c1"},
		{name: "non-breaking space", tenant: "acme\u00a0", conversation: "c1"},
		{name: "too long", tenant: strings.Repeat("a", 256), conversation: "c1"},
		{name: "longest", tenant: strings.Repeat("a", 255), conversation: "c1", ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l, err := newLayout("p/", tt.tenant, tt.conversation)
			if tt.ok {
				if err != nil {
					t.Fatalf("newLayout(%q, %q): %v", tt.tenant, tt.conversation, err)
				}
				if want := "p/" + tt.tenant + "/" + tt.conversation + "/manifest.json"; l.manifest() != want {
					t.Fatalf("manifest key %q, want %q", l.manifest(), want)
				}
				return
			}
			if !errors.Is(err, ErrInvalidTarget) {
				t.Fatalf("newLayout(%q, %q) = %v, want ErrInvalidTarget", tt.tenant, tt.conversation, err)
			}
		})
	}
}

func TestValidSnapshotName(t *testing.T) {
	t.Parallel()
	good := snapshotName(snapshotsDir, time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), "0123456789abcdef")
	if good != "snapshots/20260102T030405.000000006Z-0123456789abcdef.tar.gz" {
		t.Fatalf("snapshotName = %q", good)
	}
	tests := []struct {
		name string
		ok   bool
	}{
		{good, true},
		{"snapshots/x.tar.gz", true},
		{"snapshots/.tar.gz", false},
		{"snapshots/../../other/c/snapshots/x.tar.gz", false},
		{"snapshots/a/b.tar.gz", false},
		{"manifest.json", false},
		{"other/x.tar.gz", false},
		{"/snapshots/x.tar.gz", false},
		{"snapshots/x.tar", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := validSnapshotName(snapshotsDir, tt.name); got != tt.ok {
			t.Errorf("validSnapshotName(%q) = %v, want %v", tt.name, got, tt.ok)
		}
	}
}

func TestSnapshotNamesSortByTime(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 999_999_999, time.UTC)
	a := snapshotName(snapshotsDir, t0, "ffffffffffffffff")
	b := snapshotName(snapshotsDir, t0.Add(time.Nanosecond), "0000000000000000")
	c := snapshotName(snapshotsDir, t0.Add(10*time.Hour), "0000000000000000")
	if !(a < b && b < c) {
		t.Fatalf("names do not sort by time: %q %q %q", a, b, c)
	}
}

func TestValidPrefix(t *testing.T) {
	t.Parallel()
	for p, ok := range map[string]bool{
		"": true, "workspaces/": true, "a/b/": true,
		"workspaces": false, "/": false, "a//": false, "../": false, "a/../": false,
	} {
		if err := validPrefix(p); (err == nil) != ok {
			t.Errorf("validPrefix(%q) = %v, want ok=%v", p, err, ok)
		}
	}
}

func FuzzValidSegment(f *testing.F) {
	for _, s := range []string{"acme", "..", "a/b", "", "c1\n", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidSegment(s) != nil {
			return
		}
		l, err := newLayout("", s, s)
		if err != nil {
			t.Fatalf("valid segment %q refused by newLayout: %v", s, err)
		}
		// A valid segment stays one path element, and no path cleaning
		// (as a proxy or a copy to disk might do) moves it.
		if strings.Count(l.dir, "/") != 2 || path.Clean(l.dir)+"/" != l.dir {
			t.Fatalf("segment %q escapes: %q", s, l.dir)
		}
	})
}
