package agent

import (
	"path"
	"strings"
	"testing"
)

func TestCleanEntryPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"a/b.txt", "a/b.txt", true},
		{"./a/b/", "a/b", true},
		{"a//b", "a/b", true},
		{"./", "", true},
		{".", "", true},
		{"", "", false},
		{"/etc/passwd", "", false},
		{"../x", "", false},
		{"a/../b", "", false},
		{"a/..", "", false},
		{"a\x00b", "", false},
		{".workspace-agent-trash-1/x", "", false},
		{"sub/.workspace-agent-x", "sub/.workspace-agent-x", true},
		{"..foo/bar..", "..foo/bar..", true},
	}
	for _, tt := range tests {
		got, err := cleanEntryPath(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("cleanEntryPath(%q) = %q, %v; want %q, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestSymlinkInside(t *testing.T) {
	t.Parallel()
	tests := []struct {
		rel, target string
		want        bool
	}{
		{"l", "a/b", true},
		{"d/l", "../a", true},
		{"d/l", "../../a", false},
		{"l", "..", false},
		{"l", ".", true},
		{"l", "/workspace/a", true},
		{"l", "/workspace", true},
		{"l", "/workspace2/a", false},
		{"l", "/etc/passwd", false},
		{"l", "/workspace/../etc", false},
		{"l", "", false},
	}
	for _, tt := range tests {
		if got := symlinkInside(tt.rel, tt.target, "/workspace"); got != tt.want {
			t.Errorf("symlinkInside(%q, %q) = %v, want %v", tt.rel, tt.target, got, tt.want)
		}
	}
}

// FuzzTarEntryPath: an accepted name is clean, relative, has no ".."
// component and joined to a root stays under it.
func FuzzTarEntryPath(f *testing.F) {
	for _, s := range []string{"a/b", "./x/", "../a", "/abs", "a/../b", "a/./b//c", ".", "", "..", "a/..b/c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		clean, err := cleanEntryPath(name)
		if err != nil {
			return
		}
		if clean == "" {
			return
		}
		if strings.HasPrefix(clean, "/") || path.Clean(clean) != clean {
			t.Fatalf("cleanEntryPath(%q) = %q: not clean and relative", name, clean)
		}
		for _, c := range strings.Split(clean, "/") {
			if c == ".." || c == "" || c == "." {
				t.Fatalf("cleanEntryPath(%q) = %q has component %q", name, clean, c)
			}
		}
		if j := path.Join("/root", clean); !strings.HasPrefix(j, "/root/") {
			t.Fatalf("cleanEntryPath(%q) = %q escapes: %q", name, clean, j)
		}
		if strings.ContainsRune(clean, 0) {
			t.Fatalf("cleanEntryPath(%q) kept a NUL", name)
		}
	})
}

// FuzzSymlinkTarget: a target accepted by its text stays inside the root
// when resolved lexically from the link's directory.
func FuzzSymlinkTarget(f *testing.F) {
	for _, s := range [][2]string{{"l", "a"}, {"d/l", "../x"}, {"d/l", "../../x"}, {"l", "/workspace/a"}, {"l", "/etc"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, rel, target string) {
		rel, err := cleanEntryPath(rel)
		if err != nil || rel == "" {
			return
		}
		if !symlinkInside(rel, target, "/workspace") {
			return
		}
		var j string
		if strings.HasPrefix(target, "/") {
			j = path.Clean(target)
		} else {
			j = path.Join("/workspace", path.Dir(rel), target)
		}
		if j != "/workspace" && !strings.HasPrefix(j, "/workspace/") {
			t.Fatalf("symlinkInside(%q, %q) accepted a target resolving to %q", rel, target, j)
		}
	})
}
