package files_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/workspaced/workspaced/files"
	"github.com/workspaced/workspaced/workspace"
)

// treeScript writes a tree with the things a run leaves behind: nested
// and empty directories with their own modes, executable and private
// files, symlinks (relative, dangling-free), a hard link, odd names and a
// file larger than the restore's holdback.
const treeScript = `set -e
mkdir -p a/b/c empty 'with space'
printf x > a/b/f
printf '#!/bin/sh\necho hi\n' > a/run.sh
chmod 755 a/run.sh
printf secret > a/private
chmod 600 a/private
chmod 750 a/b
chmod 700 a/b/c
ln -s b/f a/link
ln -s ../a a/b/c/up
ln a/b/f a/hard
printf 'two words' > 'with space/file name'
head -c 1048576 /dev/urandom > random.bin
chmod 444 random.bin
`

func saveTarget(tenant, conversation string, info workspace.Info) workspace.SaveTarget {
	return workspace.SaveTarget{Tenant: tenant, Conversation: conversation, Workspace: info.ID, Endpoint: info.Endpoint}
}

func restoreTarget(tenant, conversation string, info workspace.Info) workspace.RestoreTarget {
	return workspace.RestoreTarget{Tenant: tenant, Conversation: conversation, Workspace: info.ID, Endpoint: info.Endpoint}
}

// Files written by a run survive release and re-acquire: saved from one
// workspace and restored into a fresh one, the trees are identical, modes,
// links and times included.
func TestSaveRestoreRoundTrip(t *testing.T) {
	t.Parallel()
	ws := newWorkspaces(t)
	c, bucket := newS3(t)
	reg := prometheus.NewRegistry()
	st := newStore(t, c, bucket, ws.rt, func(o *files.Options) { o.Registerer = reg })
	ctx := testCtx(t, 5*time.Minute)

	w1, w2 := ws.start(t), ws.start(t)
	ws.sh(t, w1, treeScript)
	ws.sh(t, w2, "echo stale > left-over")
	want := ws.tree(t, w1)

	if ok, err := st.Restore(ctx, restoreTarget("acme", "conv-1", w2)); ok || err != nil {
		t.Fatalf("Restore before any save = %v, %v; want false, nil", ok, err)
	}
	if err := st.Save(ctx, saveTarget("acme", "conv-1", w1)); err != nil {
		t.Fatalf("Save: %v", err)
	}
	m := readManifest(t, c, bucket, "ws/acme/conv-1/manifest.json")
	if m == nil {
		t.Fatal("no manifest after Save")
	}
	obj := getObject(t, c, bucket, "ws/acme/conv-1/"+m.Snapshot)
	sum := sha256.Sum256(obj)
	if m.Size != int64(len(obj)) || m.SHA256 != hex.EncodeToString(sum[:]) || m.Workspace != w1.ID || m.Format != files.FormatVersion {
		t.Fatalf("manifest %+v does not describe its %d-byte snapshot", m, len(obj))
	}

	ok, err := st.Restore(ctx, restoreTarget("acme", "conv-1", w2))
	if !ok || err != nil {
		t.Fatalf("Restore = %v, %v; want true, nil", ok, err)
	}
	sameTree(t, "restored workspace", ws.tree(t, w2), want)

	// Another conversation of the tenant, and the same conversation ID
	// under another tenant, have no files.
	for _, tgt := range []workspace.RestoreTarget{restoreTarget("acme", "conv-2", w2), restoreTarget("other", "conv-1", w2)} {
		if ok, err := st.Restore(ctx, tgt); ok || err != nil {
			t.Fatalf("Restore(%s/%s) = %v, %v; want false, nil", tgt.Tenant, tgt.Conversation, ok, err)
		}
	}
	for outcome, want := range map[string]float64{"saved": 1, "restored": 1, "none": 3} {
		op := "restore"
		if outcome == "saved" {
			op = "save"
		}
		if got := counterValue(t, reg, "workspaced_files_operations_total", op, outcome); got != want {
			t.Errorf("operations{op=%s,outcome=%s} = %v, want %v", op, outcome, got, want)
		}
	}
}

// An empty workspace saves too, and restoring it empties the workspace
// (the user deleted everything).
func TestEmptyWorkspaceRoundTrip(t *testing.T) {
	t.Parallel()
	ws := newWorkspaces(t)
	c, bucket := newS3(t)
	st := newStore(t, c, bucket, ws.rt, nil)
	ctx := testCtx(t, 5*time.Minute)
	w1, w2 := ws.start(t), ws.start(t)
	if got := ws.tree(t, w1); len(got) != 0 {
		t.Fatalf("a new workspace holds %v", got)
	}
	if err := st.Save(ctx, saveTarget("acme", "conv-1", w1)); err != nil {
		t.Fatalf("Save: %v", err)
	}
	ws.sh(t, w2, "mkdir d && echo x > d/f")
	if ok, err := st.Restore(ctx, restoreTarget("acme", "conv-1", w2)); !ok || err != nil {
		t.Fatalf("Restore = %v, %v; want true, nil", ok, err)
	}
	if got := ws.tree(t, w2); len(got) != 0 {
		t.Fatalf("restored an empty snapshot, workspace holds %v", got)
	}
}

// A save that fails midway (a part upload fails, the context is cancelled,
// or the manifest write fails) leaves the manifest on the previous
// snapshot, aborts its multipart upload, and is never restored.
func TestInterruptedSaveIsNeverRestored(t *testing.T) {
	t.Parallel()
	ws := newWorkspaces(t)
	c, bucket := newS3(t)
	faulty := &faultyS3{Client: c}
	st := newStore(t, faulty, bucket, ws.rt, nil)
	ctx := testCtx(t, 5*time.Minute)
	const manifestKey = "ws/acme/conv-1/manifest.json"

	w1, w2 := ws.start(t), ws.start(t)
	ws.sh(t, w1, treeScript)
	saved := ws.tree(t, w1)
	if err := st.Save(ctx, saveTarget("acme", "conv-1", w1)); err != nil {
		t.Fatalf("first Save: %v", err)
	}
	first := readManifest(t, c, bucket, manifestKey)
	snapshots := keys(t, c, bucket, "ws/acme/conv-1/snapshots/")

	// 12 MiB of random data: three 5 MiB parts.
	ws.sh(t, w1, "head -c 12582912 /dev/urandom > big && echo changed > a/b/f")

	tests := []struct {
		name  string
		fault func(*faultyS3, context.CancelFunc)
	}{
		{name: "part upload fails", fault: func(f *faultyS3, _ context.CancelFunc) { f.failPart.Store(2) }},
		{name: "context cancelled mid-stream", fault: func(f *faultyS3, cancel context.CancelFunc) {
			f.onPart = func(n int32) {
				if n == 2 {
					cancel()
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sctx, cancel := context.WithCancel(ctx)
			defer cancel()
			f := &faultyS3{Client: c}
			tt.fault(f, cancel)
			st := newStore(t, f, bucket, ws.rt, nil)
			if err := st.Save(sctx, saveTarget("acme", "conv-1", w1)); err == nil {
				t.Fatal("Save succeeded despite the fault")
			}
			if f.parts.Load() < 2 {
				t.Fatalf("the fault hit after %d parts; want it midway", f.parts.Load())
			}
			if m := readManifest(t, c, bucket, manifestKey); m == nil || m.Snapshot != first.Snapshot {
				t.Fatalf("manifest moved to %+v, want %s", m, first.Snapshot)
			}
			if n := openUploads(t, c, bucket); n != 0 {
				t.Fatalf("%d multipart uploads left open", n)
			}
			if got := keys(t, c, bucket, "ws/acme/conv-1/snapshots/"); strings.Join(got, ",") != strings.Join(snapshots, ",") {
				t.Fatalf("snapshots %v, want %v", got, snapshots)
			}
		})
	}

	t.Run("manifest write fails", func(t *testing.T) {
		faulty.failManifest.Store(true)
		if err := st.Save(ctx, saveTarget("acme", "conv-1", w1)); err == nil {
			t.Fatal("Save succeeded despite the failed manifest write")
		}
		if m := readManifest(t, c, bucket, manifestKey); m == nil || m.Snapshot != first.Snapshot {
			t.Fatalf("manifest moved to %+v, want %s", m, first.Snapshot)
		}
	})

	ok, err := st.Restore(ctx, restoreTarget("acme", "conv-1", w2))
	if !ok || err != nil {
		t.Fatalf("Restore = %v, %v; want true, nil", ok, err)
	}
	sameTree(t, "restored after interrupted saves", ws.tree(t, w2), saved)
}

// A snapshot that does not match its manifest is refused and the
// workspace keeps its contents, whether the mismatch shows before the
// upload to the agent starts (size) or only after the whole archive went
// by (digest, gzip trailer).
func TestMismatchedSnapshotIsRefused(t *testing.T) {
	t.Parallel()
	ws := newWorkspaces(t)
	c, bucket := newS3(t)
	st := newStore(t, c, bucket, ws.rt, nil)
	ctx := testCtx(t, 5*time.Minute)
	const dir = "ws/acme/conv-1/"

	w1, w2 := ws.start(t), ws.start(t)
	ws.sh(t, w1, treeScript)
	if err := st.Save(ctx, saveTarget("acme", "conv-1", w1)); err != nil {
		t.Fatalf("Save: %v", err)
	}
	manifest := getObject(t, c, bucket, dir+"manifest.json")
	m := readManifest(t, c, bucket, dir+"manifest.json")
	snapshot := getObject(t, c, bucket, dir+m.Snapshot)
	ws.sh(t, w2, "mkdir keep && echo mine > keep/file && chmod 700 keep")
	before := ws.tree(t, w2)

	flip := func(i int) []byte {
		b := bytes.Clone(snapshot)
		b[i] ^= 0x01
		return b
	}
	otherSum := sha256.Sum256([]byte("another snapshot"))
	tests := []struct {
		name     string
		manifest func(files.Manifest) any // nil: the saved manifest
		snapshot []byte                   // nil: delete it
	}{
		{name: "digest differs", manifest: func(m files.Manifest) any { m.SHA256 = hex.EncodeToString(otherSum[:]); return m }, snapshot: snapshot},
		{name: "byte flipped in the middle", snapshot: flip(len(snapshot) / 2)},
		{name: "byte flipped in the gzip trailer", snapshot: flip(len(snapshot) - 1)},
		{name: "truncated", snapshot: snapshot[:len(snapshot)-100]},
		{name: "longer", snapshot: append(bytes.Clone(snapshot), 0)},
		{name: "missing", snapshot: nil},
		{name: "manifest of a future format", manifest: func(m files.Manifest) any { m.Format = 99; return m }, snapshot: snapshot},
		{name: "manifest points elsewhere", manifest: func(m files.Manifest) any { m.Snapshot = "snapshots/../../../other/conv-1/manifest.json"; return m }, snapshot: snapshot},
		{name: "manifest not JSON", manifest: func(files.Manifest) any { return json.RawMessage(`"x"`) }, snapshot: snapshot},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mb := manifest
			if tt.manifest != nil {
				var err error
				if mb, err = json.Marshal(tt.manifest(*m)); err != nil {
					t.Fatal(err)
				}
			}
			putObject(t, c, bucket, dir+"manifest.json", mb)
			if tt.snapshot == nil {
				deleteObject(t, c, bucket, dir+m.Snapshot)
			} else {
				putObject(t, c, bucket, dir+m.Snapshot, tt.snapshot)
			}
			ok, err := st.Restore(ctx, restoreTarget("acme", "conv-1", w2))
			if ok || !errors.Is(err, files.ErrInvalidSnapshot) || !workspace.IsTerminal(err) {
				t.Fatalf("Restore = %v, %v; want false and a terminal ErrInvalidSnapshot", ok, err)
			}
			sameTree(t, "workspace after a refused restore", ws.tree(t, w2), before)
		})
	}

	// The untouched objects restore: the refusals above were the tampering.
	putObject(t, c, bucket, dir+"manifest.json", manifest)
	putObject(t, c, bucket, dir+m.Snapshot, snapshot)
	if ok, err := st.Restore(ctx, restoreTarget("acme", "conv-1", w2)); !ok || err != nil {
		t.Fatalf("Restore of the untouched snapshot = %v, %v", ok, err)
	}
	sameTree(t, "restored workspace", ws.tree(t, w2), ws.tree(t, w1))
}

// Each save writes new objects (a base or a delta, and a listing); those
// of all but the newest Keep saves are deleted once the manifest moved
// on, except the chain the manifest names.
func TestSaveKeepsTheNewestSnapshots(t *testing.T) {
	t.Parallel()
	ws := newWorkspaces(t)
	c, bucket := newS3(t)
	var tick atomic.Int64
	clock := func() time.Time {
		return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Add(time.Duration(tick.Add(1)) * time.Second)
	}
	st := newStore(t, c, bucket, ws.rt, func(o *files.Options) { o.Keep = 3; o.Now = clock })
	ctx := testCtx(t, 5*time.Minute)
	w1 := ws.start(t)
	var saved []string
	for i := range 5 {
		ws.sh(t, w1, "echo "+strings.Repeat("x", i)+" > f")
		if err := st.Save(ctx, saveTarget("acme", "conv-1", w1)); err != nil {
			t.Fatalf("Save %d: %v", i, err)
		}
		m := readManifest(t, c, bucket, "ws/acme/conv-1/manifest.json")
		saved = append(saved, "ws/acme/conv-1/"+strings.TrimSuffix(m.Listing.Object, ".listing.json.gz"))
	}
	// A save's objects share its listing's "<time>-<random>" stem.
	stems := map[string]bool{}
	for _, k := range keys(t, c, bucket, "ws/acme/conv-1/snapshots/") {
		stems[strings.TrimSuffix(strings.TrimSuffix(k, ".listing.json.gz"), ".tar.gz")] = true
	}
	var got []string
	for st := range stems {
		got = append(got, st)
	}
	sort.Strings(got)
	if want := saved[2:]; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("saves left %v, want the newest three %v", got, want)
	}
}

// Hostile tenants and conversations are refused before any S3 call or
// agent request.
func TestHostileTargetsAreRefused(t *testing.T) {
	t.Parallel()
	counting := &countingS3{}
	st, err := files.New(counting, noTransports{}, files.Options{Bucket: "b", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t, 10*time.Second)
	tests := []struct{ name, tenant, conversation string }{
		{"empty tenant", "", "c1"},
		{"empty conversation", "acme", ""},
		{"traversal in conversation", "acme", "../other/c1"},
		{"dot dot tenant", "..", "c1"},
		{"dot tenant", ".", "c1"},
		{"slash in tenant", "acme/other", "c1"},
		{"absolute", "/etc", "c1"},
		{"backslash", "acme", `c1\..\x`},
		{"NUL", "acme", "c1\x00"},
		{"newline", "acme", "c1\nmanifest.json"},
		{"space", "acme ", "c1"},
		{"invalid UTF-8", "acme\xc3", "c1"},
		{"too long", strings.Repeat("t", 300), "c1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := st.Save(ctx, workspace.SaveTarget{Tenant: tt.tenant, Conversation: tt.conversation, Endpoint: "unix:///x"})
			if !errors.Is(err, files.ErrInvalidTarget) || !workspace.IsTerminal(err) {
				t.Errorf("Save = %v, want a terminal ErrInvalidTarget", err)
			}
			ok, err := st.Restore(ctx, workspace.RestoreTarget{Tenant: tt.tenant, Conversation: tt.conversation, Endpoint: "unix:///x"})
			if ok || !errors.Is(err, files.ErrInvalidTarget) || !workspace.IsTerminal(err) {
				t.Errorf("Restore = %v, %v; want a terminal ErrInvalidTarget", ok, err)
			}
		})
	}
	if n := counting.calls.Load(); n != 0 {
		t.Fatalf("%d S3 calls for hostile targets", n)
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts files.Options
	}{
		{"no bucket", files.Options{}},
		{"keep one", files.Options{Bucket: "b", Keep: 1}},
		{"small parts", files.Options{Bucket: "b", PartSize: 1 << 20}},
		{"bad prefix", files.Options{Bucket: "b", Prefix: "../"}},
		{"bad gzip level", files.Options{Bucket: "b", GzipLevel: 12}},
	}
	for _, tt := range tests {
		if _, err := files.New(&countingS3{}, noTransports{}, tt.opts); err == nil {
			t.Errorf("%s: New accepted %+v", tt.name, tt.opts)
		}
	}
}

func getObject(t testing.TB, c *s3.Client, bucket, key string) []byte {
	t.Helper()
	out, err := c.GetObject(testCtx(t, time.Minute), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return b
}

func putObject(t testing.TB, c *s3.Client, bucket, key string, b []byte) {
	t.Helper()
	if _, err := c.PutObject(testCtx(t, time.Minute), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(b)}); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func deleteObject(t testing.TB, c *s3.Client, bucket, key string) {
	t.Helper()
	if _, err := c.DeleteObject(testCtx(t, time.Minute), &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
		t.Fatalf("delete %s: %v", key, err)
	}
}

// counterValue is the value of the counter name with label values labels
// (in label-name order), 0 if it was never incremented.
func counterValue(t testing.TB, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var got []string
			for _, l := range m.GetLabel() {
				got = append(got, l.GetValue())
			}
			if strings.Join(got, ",") == strings.Join(labels, ",") {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
