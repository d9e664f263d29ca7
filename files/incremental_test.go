package files_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/workspaced/workspaced/events/bus/bustest"
	"github.com/workspaced/workspaced/files"
)

// TestIncrementalCheckpoints: after a base save, a save of a workspace
// with 1 MiB changed uploads about 1 MiB (a delta and a listing); a
// deleted file stays deleted after a restore; a chain of deltas restores
// byte-identical; a corrupted delta refuses the restore and leaves the
// workspace untouched; after MaxDeltas deltas the next save writes a fresh
// base and the old chain is pruned.
func TestIncrementalCheckpoints(t *testing.T) {
	t.Parallel()
	ws := newWorkspaces(t)
	emu := bustest.StartEmulator(t)
	proxy := newByteCountingS3(t, emu.URL)
	c := s3.NewFromConfig(emu.Config, func(o *s3.Options) { o.BaseEndpoint = aws.String(proxy.srv.URL); o.UsePathStyle = true })
	bucket := "files-" + randomHex(t, 6)
	ctx := testCtx(t, 10*time.Minute)
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	st := newStore(t, c, bucket, ws.rt, func(o *files.Options) { o.MaxDeltas = 2 })
	const manifest = "ws/acme/conv-i/manifest.json"
	w1, w2, w3 := ws.start(t), ws.start(t), ws.start(t)
	save := func() (*files.Manifest, int64) {
		t.Helper()
		before := proxy.up.Load()
		if err := st.Save(ctx, saveTarget("acme", "conv-i", w1)); err != nil {
			t.Fatalf("Save: %v", err)
		}
		return readManifest(t, c, bucket, manifest), proxy.up.Load() - before
	}

	ws.sh(t, w1, treeScript+"for i in 1 2 3 4 5 6 7 8 9 10; do head -c 2097152 /dev/urandom > big$i.bin; done; echo bye > gone.txt")
	m0, up0 := save()
	if m0.Format != files.FormatVersion || m0.Listing == nil || len(m0.Deltas) != 0 || up0 < 20<<20 {
		t.Fatalf("first save: manifest %+v, %d bytes uploaded; want a base of the whole tree", m0, up0)
	}

	// 1 MiB new, one file deleted, one small file changed.
	ws.sh(t, w1, "head -c 1048576 /dev/urandom > new.bin && rm gone.txt && printf more >> a/b/f")
	m1, up1 := save()
	if len(m1.Deltas) != 1 || m1.Snapshot != m0.Snapshot {
		t.Fatalf("second save: manifest %+v; want the base and one delta", m1)
	}
	if up1 < 1<<20 || up1 > 1<<20+256<<10 {
		t.Errorf("1 MiB changed in a 21 MiB workspace uploaded %d bytes; want about 1 MiB", up1)
	}
	t.Logf("base save uploaded %d bytes, 1 MiB delta save %d", up0, up1)

	// A second delta: a mode change, a new directory, a file rewritten.
	ws.sh(t, w1, "chmod 600 big1.bin && mkdir -p d/e && echo deep > d/e/f && head -c 4096 /dev/urandom > big2.bin")
	m2, _ := save()
	if len(m2.Deltas) != 2 || m2.Snapshot != m0.Snapshot {
		t.Fatalf("third save: manifest %+v; want the base and two deltas", m2)
	}
	want := ws.tree(t, w1)

	ws.sh(t, w2, "echo stale > left-over && echo stale > gone.txt")
	if ok, err := st.Restore(ctx, restoreTarget("acme", "conv-i", w2)); !ok || err != nil {
		t.Fatalf("Restore of the chain = %v, %v", ok, err)
	}
	sameTree(t, "restored chain", ws.tree(t, w2), want)
	if out := ws.sh(t, w2, "test ! -e gone.txt && test ! -e left-over && echo absent"); out != "absent\n" {
		t.Errorf("deleted file after restore: %q", out)
	}

	// A corrupted delta (same size, one byte flipped): refused, the
	// workspace untouched.
	key := "ws/acme/conv-i/" + m2.Deltas[0].Object
	good := getObject(t, c, bucket, key)
	bad := append([]byte(nil), good...)
	bad[len(bad)/2] ^= 0xff
	put := func(b []byte) {
		t.Helper()
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(string(b))}); err != nil {
			t.Fatal(err)
		}
	}
	put(bad)
	ws.sh(t, w3, "echo mine > keep.txt && mkdir -p x && echo y > x/y")
	before := ws.tree(t, w3)
	_, err := st.Restore(ctx, restoreTarget("acme", "conv-i", w3))
	if !errors.Is(err, files.ErrInvalidSnapshot) {
		t.Fatalf("Restore of a corrupted delta = %v, want ErrInvalidSnapshot", err)
	}
	sameTree(t, "workspace after a refused restore", ws.tree(t, w3), before)
	put(good)

	// Compaction: MaxDeltas is 2, so the next save writes a fresh base,
	// and the old chain's objects go (Keep 3: two older objects stay).
	ws.sh(t, w1, "echo again > again.txt")
	m3, up3 := save()
	if len(m3.Deltas) != 0 || m3.Snapshot == m0.Snapshot || up3 < 20<<20 {
		t.Fatalf("fourth save: manifest %+v, %d bytes; want a fresh base", m3, up3)
	}
	for _, k := range keys(t, c, bucket, "ws/acme/conv-i/snapshots/") {
		if strings.HasSuffix(k, m0.Snapshot) {
			t.Errorf("old base %s not pruned", k)
		}
	}
	want = ws.tree(t, w1)
	if ok, err := st.Restore(ctx, restoreTarget("acme", "conv-i", w3)); !ok || err != nil {
		t.Fatalf("Restore after compaction = %v, %v", ok, err)
	}
	sameTree(t, "restored after compaction", ws.tree(t, w3), want)
}

// TestFormat2ManifestStillRestores: a save written before layers (format
// 2: one whole snapshot per tree) restores, and the next save writes a
// format 3 base.
func TestFormat2ManifestStillRestores(t *testing.T) {
	t.Parallel()
	ws := newWorkspaces(t)
	c, bucket := newS3(t)
	st := newStore(t, c, bucket, ws.rt, nil)
	ctx := testCtx(t, 5*time.Minute)
	w1, w2 := ws.start(t), ws.start(t)
	ws.sh(t, w1, treeScript)
	want := ws.tree(t, w1)

	body, err := ws.agent(t, w1).GetFiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	n, err := io.Copy(zw, body)
	_ = body.Close()
	if err != nil || zw.Close() != nil {
		t.Fatalf("read files: %v", err)
	}
	sum := sha256.Sum256(gz.Bytes())
	m := files.Manifest{
		Format: files.FormatTrees, Encoding: files.EncodingTarGzip,
		Snapshot: "snapshots/20260102T030405.000000006Z-0123456789abcdef.tar.gz",
		Size:     int64(gz.Len()), SHA256: hex.EncodeToString(sum[:]), TarSize: n,
		CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Workspace: w1.ID, Tenant: "acme", Conversation: "conv-2",
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	putObject(t, c, bucket, "ws/acme/conv-2/"+m.Snapshot, gz.Bytes())
	putObject(t, c, bucket, "ws/acme/conv-2/manifest.json", b)

	if ok, err := st.Restore(ctx, restoreTarget("acme", "conv-2", w2)); !ok || err != nil {
		t.Fatalf("Restore of a format 2 manifest = %v, %v", ok, err)
	}
	sameTree(t, "restored format 2 save", ws.tree(t, w2), want)
	if err := st.Save(ctx, saveTarget("acme", "conv-2", w2)); err != nil {
		t.Fatal(err)
	}
	if m3 := readManifest(t, c, bucket, "ws/acme/conv-2/manifest.json"); m3.Format != files.FormatVersion || m3.Listing == nil || len(m3.Deltas) != 0 {
		t.Fatalf("save after a format 2 manifest: %+v, want a format 3 base", m3)
	}
}

// hookS3 runs before once, just before the nth GetObject of the manifest.
type hookS3 struct {
	*s3.Client
	manifest string
	n        int
	before   func()
	gets     int
}

func (h *hookS3) GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	if aws.ToString(in.Key) == h.manifest {
		if h.gets++; h.gets == h.n {
			h.before()
		}
	}
	return h.Client.GetObject(ctx, in, opts...)
}

// TestSaveOnAReplacedManifestSavesBases: a save that built a delta on a
// manifest another (older) save replaced meanwhile does not write a chain
// on the replaced manifest: it saves fresh bases, and they restore.
func TestSaveOnAReplacedManifestSavesBases(t *testing.T) {
	t.Parallel()
	ws := newWorkspaces(t)
	c, bucket := newS3(t)
	ctx := testCtx(t, 5*time.Minute)
	const manifest = "ws/acme/conv-r/manifest.json"
	at := func(sec int) func() time.Time {
		return func() time.Time { return time.Date(2026, 1, 2, 3, 4, sec, 0, time.UTC) }
	}
	first := newStore(t, c, bucket, ws.rt, func(o *files.Options) { o.Now = at(0) })
	older := newStore(t, c, bucket, ws.rt, func(o *files.Options) { o.Now = at(5) })
	w1, w2 := ws.start(t), ws.start(t)
	ws.sh(t, w1, treeScript)
	if err := first.Save(ctx, saveTarget("acme", "conv-r", w1)); err != nil {
		t.Fatal(err)
	}
	ws.sh(t, w1, "echo changed > new.txt")
	// The second manifest read of the late save is its check before
	// writing: the older save replaces the manifest just then.
	hook := &hookS3{Client: c, manifest: manifest, n: 2, before: func() {
		if err := older.Save(ctx, saveTarget("acme", "conv-r", w1)); err != nil {
			t.Errorf("older save: %v", err)
		}
	}}
	late := newStore(t, hook, bucket, ws.rt, func(o *files.Options) { o.Now = at(10) })
	if err := late.Save(ctx, saveTarget("acme", "conv-r", w1)); err != nil {
		t.Fatal(err)
	}
	m := readManifest(t, c, bucket, manifest)
	if !m.CreatedAt.Equal(at(10)()) || len(m.Deltas) != 0 || (m.Session != nil && len(m.Session.Deltas) != 0) {
		t.Fatalf("manifest %+v: want the late save's fresh bases", m)
	}
	want := ws.tree(t, w1)
	if ok, err := late.Restore(ctx, restoreTarget("acme", "conv-r", w2)); !ok || err != nil {
		t.Fatalf("Restore = %v, %v", ok, err)
	}
	sameTree(t, "restored", ws.tree(t, w2), want)
}
