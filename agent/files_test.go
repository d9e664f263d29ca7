package agent_test

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/workspaced/workspaced/agent/api"

	"github.com/workspaced/workspaced/agent"
	"github.com/workspaced/workspaced/agent/client"
)

// entry describes one archive member.
type entry struct {
	name     string
	typ      byte
	mode     int64
	body     string
	linkname string
	size     int64 // overrides len(body) in the header when non-zero
}

func makeTar(t *testing.T, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Unix(1700000000, 0)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.linkname, ModTime: mtime}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if e.size != 0 {
			h.Size = e.size
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("write header %s: %v", e.name, err)
		}
		if e.typ == tar.TypeReg {
			if _, err := io.WriteString(tw, e.body); err != nil && e.size == 0 {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil && !errors.Is(err, tar.ErrWriteTooLong) {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// treeDigest hashes every entry under root: path, type, permissions,
// content or link target. Equal digests mean unchanged trees.
func treeDigest(t *testing.T, root string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		line := fmt.Sprintf("%s %v", rel, info.Mode())
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			line += " -> " + target
		case info.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" %x", sha256.Sum256(b))
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatalf("digest %s: %v", root, err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

var goodTree = []entry{
	{name: "src/", typ: tar.TypeDir, mode: 0o750},
	{name: "src/main.go", typ: tar.TypeReg, mode: 0o644, body: "package main\n"},
	{name: "src/run.sh", typ: tar.TypeReg, mode: 0o755, body: "#!/bin/sh\necho hi\n"},
	{name: "secret.txt", typ: tar.TypeReg, mode: 0o600, body: "s3cr3t"},
	{name: "empty/", typ: tar.TypeDir, mode: 0o700},
	{name: "ro/", typ: tar.TypeDir, mode: 0o555},
	{name: "ro/file", typ: tar.TypeReg, mode: 0o444, body: "read only"},
	{name: "link-to-main", typ: tar.TypeSymlink, linkname: "src/main.go"},
	{name: "src/up", typ: tar.TypeSymlink, linkname: "../secret.txt"},
	{name: "hard", typ: tar.TypeLink, linkname: "src/main.go"},
	{name: "deep/a/b/c.txt", typ: tar.TypeReg, mode: 0o640, body: "implicit parents"},
}

func TestFilesRoundTrip(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, nil)
	ctx := testContext(t)
	if err := os.WriteFile(filepath.Join(ta.workDir, "stale.txt"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ta.client.PutFiles(ctx, bytes.NewReader(makeTar(t, goodTree))); err != nil {
		t.Fatalf("PutFiles: %v", err)
	}
	if _, err := os.Stat(filepath.Join(ta.workDir, "stale.txt")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale.txt survived the replacement: %v", err)
	}
	got := readTar(t, ta.client)
	// The hard-linked pair comes back as a file and a link to it, in walk
	// order: "hard" is met first.
	if h, m := got["hard"], got["src/main.go"]; h.typ != tar.TypeReg || h.body != "package main\n" ||
		m.typ != tar.TypeLink || m.linkname != "hard" {
		t.Errorf("hard link pair: got %+v and %+v", h, m)
	}
	for _, e := range goodTree {
		name := strings.TrimSuffix(e.name, "/")
		if name == "hard" || name == "src/main.go" {
			continue
		}
		g, ok := got[name]
		if !ok {
			t.Errorf("GET lacks %s", name)
			continue
		}
		if g.typ != e.typ || g.body != e.body || g.linkname != e.linkname {
			t.Errorf("%s: got type %c body %q link %q, want %c %q %q", name, g.typ, g.body, g.linkname, e.typ, e.body, e.linkname)
		}
		if e.typ != tar.TypeSymlink && e.typ != tar.TypeLink && g.mode&0o7777 != e.mode {
			t.Errorf("%s: mode %o, want %o", name, g.mode&0o7777, e.mode)
		}
	}
	for _, implicit := range []string{"deep", "deep/a", "deep/a/b"} {
		if g, ok := got[implicit]; !ok || g.typ != tar.TypeDir {
			t.Errorf("implicit directory %s missing from GET", implicit)
		}
	}
	if len(got) != len(goodTree)+3 {
		t.Errorf("GET has %d entries, want %d", len(got), len(goodTree)+3)
	}

	// What GET returns restores the same tree.
	before := treeDigest(t, ta.workDir)
	rc, err := ta.client.GetFiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	archive, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := ta.client.PutFiles(ctx, bytes.NewReader(archive)); err != nil {
		t.Fatalf("PutFiles(GET output): %v", err)
	}
	if after := treeDigest(t, ta.workDir); after != before {
		t.Errorf("tree changed by a GET/PUT round trip:\n%s\n---\n%s", before, after)
	}
}

func readTar(t *testing.T, c *client.Client) map[string]entry {
	t.Helper()
	rc, err := c.GetFiles(testContext(t))
	if err != nil {
		t.Fatalf("GetFiles: %v", err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	got := map[string]entry{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return got
		}
		if err != nil {
			t.Fatalf("read GET archive: %v", err)
		}
		b, _ := io.ReadAll(tr)
		name := strings.TrimSuffix(h.Name, "/")
		got[name] = entry{name: name, typ: h.Typeflag, mode: h.Mode, body: string(b), linkname: h.Linkname}
	}
}

func TestPutFilesRefusesUnsafeArchives(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, func(o *agent.Options) { o.MaxTarBytes = 64 << 10 })
	ctx := testContext(t)
	if err := ta.client.PutFiles(ctx, bytes.NewReader(makeTar(t, goodTree))); err != nil {
		t.Fatalf("PutFiles(good): %v", err)
	}
	reg := func(name string) entry { return entry{name: name, typ: tar.TypeReg, mode: 0o644, body: "x"} }
	tests := []struct {
		name    string
		entries []entry
		raw     []byte
		status  int
	}{
		{name: "absolute path", entries: []entry{reg("ok"), reg("/etc/evil")}, status: 400},
		{name: "dot-dot", entries: []entry{reg("../evil")}, status: 400},
		{name: "dot-dot inside", entries: []entry{reg("a/../../evil")}, status: 400},
		{name: "dot-dot that stays inside", entries: []entry{reg("a/../b")}, status: 400},
		{name: "symlink absolute outside", entries: []entry{{name: "l", typ: tar.TypeSymlink, linkname: "/etc/passwd"}}, status: 400},
		{name: "symlink relative outside", entries: []entry{{name: "d/l", typ: tar.TypeSymlink, linkname: "../../x"}}, status: 400},
		{name: "symlink chain outside", entries: []entry{
			{name: "s", typ: tar.TypeSymlink, linkname: "."},
			{name: "l", typ: tar.TypeSymlink, linkname: "s/.."},
		}, status: 400},
		{name: "symlink chain through dirs", entries: []entry{
			{name: "a/b/", typ: tar.TypeDir, mode: 0o755},
			{name: "a/b/top", typ: tar.TypeSymlink, linkname: "../.."},
			{name: "esc", typ: tar.TypeSymlink, linkname: "a/b/top/.."},
		}, status: 400},
		{name: "symlink loop", entries: []entry{
			{name: "x", typ: tar.TypeSymlink, linkname: "y"},
			{name: "y", typ: tar.TypeSymlink, linkname: "x"},
		}, status: 400},
		{name: "write through symlink", entries: []entry{
			{name: "sub/", typ: tar.TypeDir, mode: 0o755},
			{name: "d", typ: tar.TypeSymlink, linkname: "sub"},
			reg("d/file"),
		}, status: 400},
		{name: "write through replaced dir", entries: []entry{
			{name: "s", typ: tar.TypeSymlink, linkname: "."},
			{name: "d/", typ: tar.TypeDir, mode: 0o755},
			{name: "d", typ: tar.TypeSymlink, linkname: "s/.."},
			reg("d/file"),
		}, status: 400},
		{name: "hardlink absolute", entries: []entry{{name: "h", typ: tar.TypeLink, linkname: "/etc/passwd"}}, status: 400},
		{name: "hardlink outside", entries: []entry{{name: "h", typ: tar.TypeLink, linkname: "../x"}}, status: 400},
		{name: "hardlink to missing", entries: []entry{{name: "h", typ: tar.TypeLink, linkname: "nope"}}, status: 400},
		{name: "hardlink to symlink", entries: []entry{
			{name: "l", typ: tar.TypeSymlink, linkname: "f"}, reg("f"),
			{name: "h", typ: tar.TypeLink, linkname: "l"},
		}, status: 400},
		{name: "char device", entries: []entry{{name: "null", typ: tar.TypeChar, mode: 0o666}}, status: 400},
		{name: "block device", entries: []entry{{name: "sda", typ: tar.TypeBlock, mode: 0o660}}, status: 400},
		{name: "fifo", entries: []entry{{name: "pipe", typ: tar.TypeFifo, mode: 0o644}}, status: 400},
		{name: "reserved name", entries: []entry{reg(".workspace-agent-staging-x/f")}, status: 400},
		{name: "file over the limit", entries: []entry{{name: "big", typ: tar.TypeReg, mode: 0o644, body: strings.Repeat("x", 65<<10)}}, status: 413},
		{name: "archive over the limit", entries: manySmall(100, 1<<10), status: 413},
		{name: "not a tar", raw: bytes.Repeat([]byte("garbage!"), 200), status: 400},
		{name: "truncated", raw: makeTar(t, []entry{reg("a"), {name: "b", typ: tar.TypeReg, mode: 0o644, body: strings.Repeat("y", 4096)}})[:2000], status: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { // sequential: PUT takes the run slot
			before := treeDigest(t, ta.workDir)
			body := tt.raw
			if body == nil {
				body = makeTar(t, tt.entries)
			}
			err := ta.client.PutFiles(testContext(t), bytes.NewReader(body))
			var apiErr *client.APIError
			if !errors.As(err, &apiErr) || apiErr.Status != tt.status {
				t.Fatalf("PutFiles error = %v, want status %d", err, tt.status)
			}
			if after := treeDigest(t, ta.workDir); after != before {
				t.Errorf("refused archive changed the workspace:\n%s\n---\n%s", before, after)
			}
		})
	}
}

func manySmall(n, size int) []entry {
	var es []entry
	for i := range n {
		es = append(es, entry{name: fmt.Sprintf("f%03d", i), typ: tar.TypeReg, mode: 0o644, body: strings.Repeat("z", size)})
	}
	return es
}

func TestPutFilesWhileRunningIsBusy(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, nil)
	prompt, pidfile := sleepPrompt(t)
	ctx, cancel := contextWithCancel(t)
	st, err := ta.client.Execute(ctx, api.ExecuteRequest{Prompt: prompt})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	waitFor(t, st, isSleeping)
	err = ta.client.PutFiles(testContext(t), bytes.NewReader(makeTar(t, goodTree)))
	if !errors.Is(err, client.ErrBusy) {
		t.Fatalf("PutFiles during a run = %v, want api.ErrBusy", err)
	}
	cancel()
	waitIdle(t, ta)
	assertGone(t, readPIDs(t, pidfile))
}

// TestSessionTree: /files/session moves $HOME/.claude and nothing else;
// the stand-in's transcript written by a run is in it, a PUT replaces it
// without touching /workspace, and an unknown tree is a 400.
func TestSessionTree(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, nil)
	ctx := testContext(t)
	if err := os.WriteFile(filepath.Join(ta.workDir, "work.txt"), []byte("work"), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := ta.client.Execute(ctx, api.ExecuteRequest{Prompt: "remember this"})
	if err != nil {
		t.Fatal(err)
	}
	sid := sessionID(t, collect(t, st))
	rc, err := ta.client.GetTree(ctx, api.TreeSession)
	if err != nil {
		t.Fatal(err)
	}
	saved, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	names := tarNames(t, saved)
	slug := strings.NewReplacer("/", "-", ".", "-", "_", "-").Replace(ta.workDir)
	if want := "projects/" + slug + "/" + sid + ".jsonl"; !slices.Contains(names, want) || slices.Contains(names, "work.txt") {
		t.Fatalf("session tree %q, want %s and no workspace files", names, want)
	}

	// Another agent (a new workspace) gets the session: the run resumes.
	other := startAgent(t, func(o *agent.Options) { o.WorkDir = ta.workDir })
	if err := other.client.PutTree(ctx, api.TreeSession, bytes.NewReader(saved)); err != nil {
		t.Fatal(err)
	}
	st, err = other.client.Execute(ctx, api.ExecuteRequest{Prompt: "history:", SessionID: sid})
	if err != nil {
		t.Fatal(err)
	}
	if texts := assistantTexts(t, collect(t, st)); len(texts) == 0 || texts[0] != "turn 1: remember this\n" {
		t.Errorf("resumed run saw %q", texts)
	}
	if b, err := os.ReadFile(filepath.Join(ta.workDir, "work.txt")); err != nil || string(b) != "work" {
		t.Errorf("workspace touched by a session PUT: %q, %v", b, err)
	}

	for _, tree := range []string{"nope", ".."} {
		if _, err := ta.client.GetTree(ctx, tree); !isStatus(err, 400) && !isStatus(err, 404) {
			t.Errorf("GET tree %q: %v, want 400/404", tree, err)
		}
	}
}

// TestTreeDigest: the digest moves when a file changes (even to the same
// size and modification time) and stays when nothing does.
func TestTreeDigest(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, nil)
	ctx := testContext(t)
	f := filepath.Join(ta.workDir, "a.txt")
	if err := os.WriteFile(f, []byte("aaaa"), 0o644); err != nil {
		t.Fatal(err)
	}
	digest := func() api.TreeDigest {
		d, err := ta.client.TreeDigest(ctx, api.TreeWorkspace)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	d1 := digest()
	if d1.Entries != 1 || d1.Bytes != 4 || len(d1.Digest) != 64 || d1.Tree != api.TreeWorkspace {
		t.Fatalf("digest %+v", d1)
	}
	if d2 := digest(); d2 != d1 {
		t.Errorf("unchanged tree: %+v then %+v", d1, d2)
	}
	fi, err := os.Stat(f)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // the change time must be able to move
	if err := os.WriteFile(f, []byte("bbbb"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(f, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if d3 := digest(); d3.Digest == d1.Digest {
		t.Errorf("same size and mtime, new content: digest did not move")
	}
}

func tarNames(t *testing.T, b []byte) []string {
	t.Helper()
	var names []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
}

func isStatus(err error, status int) bool {
	var ae *client.APIError
	return errors.As(err, &ae) && ae.Status == status
}
