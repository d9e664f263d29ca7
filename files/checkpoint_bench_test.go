package files_test

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/workspaced/workspaced/events/bus/bustest"
	"github.com/workspaced/workspaced/internal/testenv"
)

// Checkpoint benchmark sizes: 200 files of 1 MiB of random data
// (incompressible, so gzip gains nothing and both sides move the same
// bytes); one file is rewritten for the "1MiB-changed" case.
const (
	benchFiles    = 200
	benchFileSize = 1 << 20
)

// byteCountingS3 is a reverse proxy in front of the emulator that counts the
// request body bytes of every call: what a client uploads, measured the
// same way for both clients.
type byteCountingS3 struct {
	srv *httptest.Server
	up  atomic.Int64
}

func newByteCountingS3(b testing.TB, target string) *byteCountingS3 {
	u, err := url.Parse(target)
	if err != nil {
		b.Fatal(err)
	}
	c := &byteCountingS3{}
	rp := httputil.NewSingleHostReverseProxy(u)
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			r.Body = &countBody{r: r.Body, n: &c.up}
		}
		rp.ServeHTTP(w, r)
	}))
	b.Cleanup(c.srv.Close)
	return c
}

type countBody struct {
	r io.ReadCloser
	n *atomic.Int64
}

func (c *countBody) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
func (c *countBody) Close() error { return c.r.Close() }

// randomFile writes size random bytes to path.
func randomFile(b *testing.B, path string, size int) []byte {
	data := make([]byte, size)
	_, _ = rand.Read(data)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
	return data
}

// BenchmarkCheckpoint compares a checkpoint (files.Store.Save with the
// agent's digests) with `aws s3 sync` (Debian's awscli) of the same 200 MiB
// tree to the same emulator, through the same byte-counting proxy: an
// unchanged tree, and one with 1 MiB rewritten before each operation.
// Sub-benchmarks alternate within each -count round. Reports bytes
// uploaded per operation (up-B/op).
func BenchmarkCheckpoint(b *testing.B) {
	awsCLI := "/usr/bin/aws"
	if _, err := os.Stat(awsCLI); err != nil {
		testenv.Unavailable(b, "Debian's awscli (/usr/bin/aws)", err)
	}
	ws := newWorkspaces(b)
	emu := bustest.StartEmulator(b)
	proxy := newByteCountingS3(b, emu.URL)
	c := s3.NewFromConfig(emu.Config, func(o *s3.Options) { o.BaseEndpoint = aws.String(proxy.srv.URL); o.UsePathStyle = true })
	bucket := "bench-" + randomHex(b, 6)
	ctx := testCtx(b, 30*time.Minute)
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		b.Fatal(err)
	}
	st := newStore(b, c, bucket, ws.rt, nil)

	// The same tree on the host (for awscli) and in the workspace.
	dir := b.TempDir()
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	for i := range benchFiles {
		name := fmt.Sprintf("f%03d.bin", i)
		data := randomFile(b, filepath.Join(dir, name), benchFileSize)
		_ = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg, ModTime: time.Now()})
		_, _ = tw.Write(data)
	}
	_ = tw.Close()
	w := ws.start(b)
	if err := ws.agent(b, w).PutFiles(ctx, &tarBuf); err != nil {
		b.Fatal(err)
	}
	sync := func() {
		cmd := exec.CommandContext(ctx, awsCLI, "--endpoint-url", proxy.srv.URL, "s3", "sync", "--only-show-errors", dir, "s3://"+bucket+"/awscli/")
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test",
			"AWS_DEFAULT_REGION=us-east-1", "AWS_PAGER=")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("aws s3 sync: %v\n%s", err, out)
		}
	}
	save := func() {
		if err := st.Save(ctx, saveTarget("acme", "bench", w)); err != nil {
			b.Fatal(err)
		}
	}
	// The first of each uploads everything: not measured.
	sync()
	save()

	measure := func(b *testing.B, change func(), op func()) {
		var up int64
		for range b.N {
			b.StopTimer()
			if change != nil {
				change()
			}
			before := proxy.up.Load()
			b.StartTimer()
			op()
			b.StopTimer()
			up += proxy.up.Load() - before
		}
		b.ReportMetric(float64(up)/float64(b.N), "up-B/op")
	}
	changeHost := func() { randomFile(b, filepath.Join(dir, "f000.bin"), benchFileSize) }
	changeWorkspace := func() { ws.sh(b, w, "head -c 1048576 /dev/urandom > /workspace/f000.bin") }
	b.Run("unchanged/workspaced", func(b *testing.B) { measure(b, nil, save) })
	b.Run("unchanged/awscli", func(b *testing.B) { measure(b, nil, sync) })
	b.Run("1MiB-changed/workspaced", func(b *testing.B) { measure(b, changeWorkspace, save) })
	b.Run("1MiB-changed/awscli", func(b *testing.B) { measure(b, changeHost, sync) })
}
