package files

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"testing"
	"testing/iotest"
)

// snapshotOf returns a gzip-compressed tar with one file of size bytes.
func snapshotOf(t *testing.T, size int) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	data := make([]byte, size)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	if err := tw.WriteHeader(&tar.Header{Name: "f", Mode: 0o644, Size: int64(size), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// verified returns the tar stream Restore sends the agent for the object
// obj whose manifest says size and sum, and the failure record.
// With oneByte the decompressed stream comes a byte at a time, its last
// byte and its end in separate reads (compress/gzip returns them together,
// but nothing promises it).
func verified(t *testing.T, obj io.Reader, size int64, sum []byte, oneByte bool) (io.Reader, *firstFailure) {
	t.Helper()
	fail := &firstFailure{}
	v := &verifier{r: obj, h: sha256.New(), size: size, sum: sum, fail: fail}
	zr, err := gzip.NewReader(v)
	if err != nil {
		t.Fatalf("gzip header: %v", err)
	}
	var r io.Reader = zr
	if oneByte {
		r = &lateEOF{r: iotest.OneByteReader(zr)}
	}
	return &holdback{r: r, end: v.finish, fail: fail}, fail
}

// lateEOF returns a reader's last bytes and its io.EOF in separate reads.
type lateEOF struct {
	r   io.Reader
	eof bool
}

func (l *lateEOF) Read(p []byte) (int, error) {
	if l.eof {
		return 0, io.EOF
	}
	n, err := l.r.Read(p)
	if n > 0 && errors.Is(err, io.EOF) {
		l.eof = true
		return n, nil
	}
	return n, err
}

// readTar reads a tar stream as the agent does: entries until io.EOF.
func readTar(r io.Reader) error {
	tr := tar.NewReader(r)
	for {
		if _, err := tr.Next(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if _, err := io.Copy(io.Discard, tr); err != nil {
			return err
		}
	}
}

func TestVerifiedStreamPassesAMatchingSnapshot(t *testing.T) {
	t.Parallel()
	for _, size := range []int{0, 100, holdbackBytes, 3*holdbackBytes + 7} {
		obj := snapshotOf(t, size)
		sum := sha256.Sum256(obj)
		for name, r := range map[string]io.Reader{
			"whole":    bytes.NewReader(obj),
			"one byte": iotest.OneByteReader(bytes.NewReader(obj)),
			"half":     iotest.HalfReader(bytes.NewReader(obj)),
		} {
			tarStream, fail := verified(t, r, int64(len(obj)), sum[:], false)
			if err := readTar(tarStream); err != nil {
				t.Fatalf("size %d, %s: %v", size, name, err)
			}
			if err := fail.wrap("k"); err != nil {
				t.Fatalf("size %d, %s: failure recorded: %v", size, name, err)
			}
		}
	}
}

// A snapshot whose digest or size does not match must never reach the end
// of its tar stream: the reader gets an error, not io.EOF, so the agent
// (which commits at the end of the archive) refuses it.
func TestVerifiedStreamNeverEndsAMismatchedSnapshot(t *testing.T) {
	t.Parallel()
	obj := snapshotOf(t, 200<<10)
	sum := sha256.Sum256(obj)
	wrongSum := sha256.Sum256([]byte("other"))
	tests := []struct {
		name string
		obj  []byte
		size int64
		sum  []byte
	}{
		{name: "digest differs", obj: obj, size: int64(len(obj)), sum: wrongSum[:]},
		{name: "object shorter than manifest", obj: obj, size: int64(len(obj)) + 1, sum: sum[:]},
		{name: "object longer than manifest", obj: append(append([]byte{}, obj...), snapshotOf(t, 10)...), size: int64(len(obj)), sum: sum[:]},
	}
	for _, tt := range tests {
		for _, oneByte := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/one byte %v", tt.name, oneByte), func(t *testing.T) {
				t.Parallel()
				tarStream, fail := verified(t, bytes.NewReader(tt.obj), tt.size, tt.sum, oneByte)
				if err := readTar(tarStream); err == nil {
					t.Fatal("tar stream of a mismatched snapshot ended cleanly")
				}
				if !errors.Is(fail.wrap("k"), ErrInvalidSnapshot) {
					t.Fatalf("failure %v, want ErrInvalidSnapshot", fail.wrap("k"))
				}
			})
		}
	}
}

func TestHoldbackWithholdsTheTailUntilEndPasses(t *testing.T) {
	t.Parallel()
	// More than a tar record (20 blocks of 512 bytes), the longest end
	// padding tar tools write.
	if holdbackBytes <= 20*512 {
		t.Fatalf("holdbackBytes %d does not cover a tar record", holdbackBytes)
	}
	data := make([]byte, holdbackBytes+1000)
	endErr := errors.New("check failed")
	fail := &firstFailure{}
	h := &holdback{r: bytes.NewReader(data), end: func() error { return endErr }, fail: fail}
	got, err := io.ReadAll(h)
	if !errors.Is(err, endErr) {
		t.Fatalf("ReadAll error %v, want %v", err, endErr)
	}
	if len(got) != 1000 {
		t.Fatalf("released %d bytes before the check, want %d", len(got), 1000)
	}
	h = &holdback{r: iotest.OneByteReader(bytes.NewReader(data)), end: func() error { return nil }, fail: fail}
	if got, err := io.ReadAll(h); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("ReadAll = %d bytes, %v; want all %d", len(got), err, len(data))
	}
}

func TestVerifierReadErrorIsNotInvalid(t *testing.T) {
	t.Parallel()
	obj := snapshotOf(t, 300<<10)
	sum := sha256.Sum256(obj)
	broken := io.MultiReader(bytes.NewReader(obj[:len(obj)/2]), iotest.ErrReader(io.ErrUnexpectedEOF))
	tarStream, fail := verified(t, broken, int64(len(obj)), sum[:], false)
	if err := readTar(tarStream); err == nil {
		t.Fatal("tar stream of a broken read ended cleanly")
	}
	err := fail.wrap("k")
	if err == nil || errors.Is(err, ErrInvalidSnapshot) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("failure %v, want a retryable read error", err)
	}
}
