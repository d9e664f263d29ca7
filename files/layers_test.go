package files

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"testing"
	"time"
)

// tarOf builds an agent-style tar of name → content (a nil content: a
// directory).
func tarOf(t *testing.T, mtime time.Time, entries ...[2]string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		h := &tar.Header{Name: e[0], Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(e[1])), ModTime: mtime}
		if e[0][len(e[0])-1] == '/' {
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func names(t *testing.T, b []byte) []string {
	t.Helper()
	var out []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, h.Name)
	}
}

// TestDiffTree: a delta holds only new and changed files; unchanged ones
// keep their layer; a file whose content changed under the same metadata
// (the tar's whole-second mtime) stops the delta with errStaleListing.
func TestDiffTree(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1700000000, 0)
	var base bytes.Buffer
	listing, err := diffTree(bytes.NewReader(tarOf(t, t0, [2]string{"d/", ""}, [2]string{"d/a", "aaa"}, [2]string{"b", "bbb"})), &base, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(t, base.Bytes()); len(got) != 2 || got[0] != "d/a" || got[1] != "b" {
		t.Fatalf("base holds %v, want the regular files", got)
	}
	prev := map[string]listed{}
	for _, e := range listing {
		prev[e.Name] = e
	}

	t1 := t0.Add(time.Second)
	var delta bytes.Buffer
	next, err := diffTree(bytes.NewReader(tarOf(t, t0, [2]string{"d/", ""}, [2]string{"d/a", "aaa"}, [2]string{"c", "new"})), &delta, prev, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(t, delta.Bytes()); len(got) != 1 || got[0] != "c" {
		t.Fatalf("delta holds %v, want the new file only", got)
	}
	layers := map[string]int{}
	for _, e := range next {
		layers[e.Name] = e.Layer
	}
	if _, ok := layers["b"]; ok || layers["d/a"] != 0 || layers["c"] != 1 || len(next) != 3 {
		t.Fatalf("listing %+v: want d/, d/a in the base, c in the delta, b gone", next)
	}

	_, err = diffTree(bytes.NewReader(tarOf(t, t0, [2]string{"d/a", "AAA"})), io.Discard, prev, 1)
	if !errors.Is(err, errStaleListing) {
		t.Fatalf("same metadata, other content: %v, want errStaleListing", err)
	}
	var changed bytes.Buffer
	if _, err := diffTree(bytes.NewReader(tarOf(t, t1, [2]string{"d/a", "AAA"})), &changed, prev, 1); err != nil {
		t.Fatal(err)
	}
	if got := names(t, changed.Bytes()); len(got) != 1 || got[0] != "d/a" {
		t.Fatalf("a newer mtime: delta holds %v, want d/a", got)
	}
}

func gzipped(t testing.TB, b []byte) []byte {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// FuzzDecodeListing: a listing read from S3 never panics the decoder; one
// it accepts names each path once, with a known type and a layer of the
// chain.
func FuzzDecodeListing(f *testing.F) {
	f.Add(gzipped(f, []byte(`[{"n":"d/","t":53,"m":493,"mt":1},{"n":"d/a","t":48,"m":420,"mt":1,"s":3,"h":"ab","y":1},{"n":"l","t":50,"l":"d/a"}]`)), 2)
	f.Add(gzipped(f, []byte(`[{"n":"a","t":48,"y":5}]`)), 2)
	f.Add(gzipped(f, []byte(`[{"n":"a","t":48},{"n":"a","t":48}]`)), 1)
	f.Add([]byte("not gzip"), 1)
	f.Fuzz(func(t *testing.T, data []byte, layers int) {
		l, err := decodeListing(data, layers)
		if err != nil {
			if !errors.Is(err, ErrInvalidSnapshot) {
				t.Fatalf("error %v does not wrap ErrInvalidSnapshot", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, e := range l {
			if seen[e.Name] || e.Layer < 0 || e.Layer >= layers {
				t.Fatalf("accepted %+v", l)
			}
			seen[e.Name] = true
		}
	})
}
