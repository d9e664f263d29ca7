package files_test

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/docker/docker/client"

	"github.com/workspaced/workspaced/agent/api"
	agentclient "github.com/workspaced/workspaced/agent/client"
	"github.com/workspaced/workspaced/events/bus/bustest"
	"github.com/workspaced/workspaced/files"
	"github.com/workspaced/workspaced/internal/testenv"
	"github.com/workspaced/workspaced/runtime/docker"
	"github.com/workspaced/workspaced/workspace"
)

// testLabel marks every container a test creates, so cleanup removes
// exactly those (other packages' tests share the engine).
const testLabel = "test.workspaced.files"

// workspaceImage is the image the tests run (`make images`);
// WORKSPACE_TEST_IMAGE overrides it.
func workspaceImage() string {
	if img := os.Getenv("WORKSPACE_TEST_IMAGE"); img != "" {
		return img
	}
	return "workspaced/workspace:dev"
}

func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// newS3 returns a client of the in-process emulator and a fresh bucket.
func newS3(t testing.TB) (*s3.Client, string) {
	t.Helper()
	e := bustest.StartEmulator(t)
	c := s3.NewFromConfig(e.Config, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(e.URL)
		o.UsePathStyle = true
	})
	bucket := "files-" + randomHex(t, 6)
	if _, err := c.CreateBucket(testCtx(t, 10*time.Second), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	return c, bucket
}

// workspaces starts real workspaces on the local engine, each removed at
// cleanup.
type workspaces struct {
	cli *client.Client
	rt  *docker.Runtime
	id  string
}

func newWorkspaces(t testing.TB) *workspaces {
	t.Helper()
	cli := testenv.Docker(t)
	testenv.Image(t, cli, workspaceImage())
	// A short base keeps socket paths under the 107-byte limit.
	base, err := os.MkdirTemp("", "wsf")
	if err != nil {
		t.Fatal(err)
	}
	w := &workspaces{cli: cli, id: randomHex(t, 6)}
	t.Cleanup(func() { w.removeAll(t); _ = os.RemoveAll(base) })
	w.rt, err = docker.New(cli, docker.Options{
		Image:          workspaceImage(),
		SocketBasePath: base,
		Labels:         map[string]string{testLabel: w.id},
		StopGrace:      time.Second,
		Logger:         testLogger(t),
	})
	if err != nil {
		t.Fatalf("docker.New: %v", err)
	}
	return w
}

// removeAll force-removes every container of this test.
func (w *workspaces) removeAll(t testing.TB) {
	testenv.RemoveLabelled(t, w.cli, testLabel, w.id)
}

// start starts a workspace and waits until its agent answers; it is
// stopped at cleanup.
func (w *workspaces) start(t testing.TB) workspace.Info {
	t.Helper()
	ctx := testCtx(t, 2*time.Minute)
	info, err := w.rt.Start(ctx, workspace.StartSpec{Token: "f" + randomHex(t, 8)})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := w.rt.Stop(ctx, info.ID, "test"); err != nil && !errors.Is(err, workspace.ErrNotFound) {
			t.Errorf("stop %s: %v", info.ID, err)
		}
	})
	if err := w.rt.WaitReady(ctx, info); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	return info
}

// agent returns a client for the workspace's agent.
func (w *workspaces) agent(t testing.TB, info workspace.Info) *agentclient.Client {
	t.Helper()
	tr, err := w.rt.Transport(info.Endpoint)
	if err != nil {
		t.Fatalf("Transport: %v", err)
	}
	t.Cleanup(tr.(interface{ CloseIdleConnections() }).CloseIdleConnections)
	return agentclient.New(tr)
}

// sh runs script with sh -c in the workspace (cwd /workspace) through the
// agent's POST /execute and fails the test unless it exits 0.
func (w *workspaces) sh(t testing.TB, info workspace.Info, script string) string {
	t.Helper()
	stream, err := w.agent(t, info).Execute(testCtx(t, 2*time.Minute), api.ExecuteRequest{Kind: api.KindCommand, Argv: []string{"sh", "-c", script}})
	if err != nil {
		t.Fatalf("execute: %v", err)
	}
	defer stream.Close()
	var out strings.Builder
	for {
		ev, err := stream.Next()
		if err != nil {
			t.Fatalf("execute %q: %v; output so far:\n%s", script, err, out.String())
		}
		switch ev.Event {
		case api.EventStdout, api.EventStderr:
			out.WriteString(ev.Data + "\n")
		case api.EventStdoutPart, api.EventStderrPart:
			out.WriteString(ev.Data)
		case api.EventDone:
			if d := stream.Done(); d.ExitCode != 0 || d.Error != "" {
				t.Fatalf("execute %q: exit %d %s; output:\n%s", script, d.ExitCode, d.Error, out.String())
			}
			// The agent takes the next run once this response ended.
			if _, err := io.Copy(io.Discard, stream.Body()); err != nil {
				t.Fatalf("execute %q: drain: %v", script, err)
			}
			return out.String()
		}
	}
}

// entry is one member of a workspace tar, with its content's digest.
type entry struct {
	Name    string
	Type    byte
	Mode    int64
	Size    int64
	Link    string
	ModTime time.Time
	SHA256  string
}

func (e entry) String() string {
	return fmt.Sprintf("%s type=%c mode=%o size=%d link=%q mtime=%s sha=%.12s", e.Name, e.Type, e.Mode, e.Size, e.Link, e.ModTime.UTC().Format(time.RFC3339), e.SHA256)
}

// tree returns the workspace's files as the agent's GET /files streams
// them, sorted by name.
func (w *workspaces) tree(t testing.TB, info workspace.Info) []entry {
	t.Helper()
	body, err := w.agent(t, info).GetFiles(testCtx(t, 2*time.Minute))
	if err != nil {
		t.Fatalf("GetFiles: %v", err)
	}
	defer body.Close()
	var out []entry
	tr := tar.NewReader(body)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read workspace tar: %v", err)
		}
		d := sha256.New()
		if _, err := io.Copy(d, tr); err != nil {
			t.Fatalf("read %s: %v", h.Name, err)
		}
		e := entry{Name: h.Name, Type: h.Typeflag, Mode: h.Mode, Size: h.Size, Link: h.Linkname, ModTime: h.ModTime, SHA256: hex.EncodeToString(d.Sum(nil))}
		if h.Typeflag == tar.TypeSymlink {
			// The agent restores the times of files and directories;
			// a symlink's own time is when it was recreated.
			e.ModTime = time.Time{}
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// sameTree fails the test unless got and want list the same entries.
func sameTree(t testing.TB, what string, got, want []entry) {
	t.Helper()
	g, w := make([]string, len(got)), make([]string, len(want))
	for i, e := range got {
		g[i] = e.String()
	}
	for i, e := range want {
		w[i] = e.String()
	}
	if strings.Join(g, "\n") != strings.Join(w, "\n") {
		t.Fatalf("%s: trees differ\ngot:\n%s\nwant:\n%s", what, strings.Join(g, "\n"), strings.Join(w, "\n"))
	}
}

// newStore returns a Store for bucket over client (or a wrapper of it).
func newStore(t testing.TB, client files.S3, bucket string, tr files.Transports, mod func(*files.Options)) *files.Store {
	t.Helper()
	opts := files.Options{Bucket: bucket, Prefix: "ws", PartSize: 5 << 20, Logger: testLogger(t)}
	if mod != nil {
		mod(&opts)
	}
	s, err := files.New(client, tr, opts)
	if err != nil {
		t.Fatalf("files.New: %v", err)
	}
	return s
}

// readManifest returns the conversation's manifest, or nil if none.
func readManifest(t testing.TB, c *s3.Client, bucket, key string) *files.Manifest {
	t.Helper()
	out, err := c.GetObject(testCtx(t, 10*time.Second), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		var nsk interface{ ErrorCode() string }
		if errors.As(err, &nsk) && nsk.ErrorCode() == "NoSuchKey" {
			return nil
		}
		t.Fatalf("get manifest: %v", err)
	}
	defer out.Body.Close()
	var m files.Manifest
	if err := json.NewDecoder(out.Body).Decode(&m); err != nil {
		t.Fatalf("decode manifest: %v", err)
	}
	return &m
}

// keys lists the bucket's keys under prefix.
func keys(t testing.TB, c *s3.Client, bucket, prefix string) []string {
	t.Helper()
	out, err := c.ListObjectsV2(testCtx(t, 10*time.Second), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	if err != nil {
		t.Fatalf("list objects: %v", err)
	}
	var ks []string
	for _, o := range out.Contents {
		ks = append(ks, aws.ToString(o.Key))
	}
	sort.Strings(ks)
	return ks
}

// openUploads counts the bucket's unfinished multipart uploads.
func openUploads(t testing.TB, c *s3.Client, bucket string) int {
	t.Helper()
	out, err := c.ListMultipartUploads(testCtx(t, 10*time.Second), &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatalf("list multipart uploads: %v", err)
	}
	return len(out.Uploads)
}

// testLogger logs through t.Log, so output shows with the failing test.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tlogWriter struct{ t testing.TB }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// noTransports is a Transports for tests that must never reach an agent.
type noTransports struct{}

func (noTransports) Transport(string) (http.RoundTripper, error) {
	return nil, errors.New("no agent in this test")
}
