package files_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/workspaced/workspaced/files"
	"github.com/workspaced/workspaced/internal/testenv"
)

// Memory test sizes: the workspace holds memoryTestMiB of random data
// (incompressible, so the snapshot is as large), and a save may grow the
// heap by at most memoryBoundMiB, a generous multiple of what the
// multipart buffers need ((Concurrency+1) * PartSize = 15 MiB here).
const (
	memoryTestMiB  = 200
	memoryBoundMiB = 64
	memoryChildEnv = "FILES_MEMORY_TEST_CHILD"
)

// A save of a workspace much larger than the bound streams it: the heap
// never holds the snapshot. The measurement runs in a child process whose
// emulator keeps object bodies on disk (KUMO_DATA_DIR, read when the
// process starts), so the heap holds only what the save itself uses.
func TestSaveMemoryIsBounded(t *testing.T) {
	if os.Getenv(memoryChildEnv) == "1" {
		measureSaveMemory(t)
		return
	}
	t.Parallel()
	ctx := testCtx(t, 15*time.Minute)
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestSaveMemoryIsBounded$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), memoryChildEnv+"=1", "KUMO_DATA_DIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	t.Logf("child process output:\n%s", out)
	switch {
	case err != nil:
		t.Fatalf("child process: %v", err)
	case strings.Contains(string(out), "--- SKIP"):
		testenv.Unavailable(t, "a dependency of the child process", errors.New("it skipped; see its output"))
	case !strings.Contains(string(out), "--- PASS: TestSaveMemoryIsBounded"):
		t.Fatal("the child process did not run the test")
	}
}

func measureSaveMemory(t *testing.T) {
	if os.Getenv("KUMO_DATA_DIR") == "" {
		t.Fatal("KUMO_DATA_DIR is not set: the emulator would keep the snapshot in the heap")
	}
	ws := newWorkspaces(t)
	c, bucket := newS3(t)
	w1 := ws.start(t)
	ws.sh(t, w1, fmt.Sprintf("head -c %d /dev/urandom > big", memoryTestMiB<<20))

	heap := newHeapPeak()
	st := newStore(t, &sampledS3{Client: c, sample: heap.sample}, bucket, ws.rt, func(o *files.Options) {
		o.PartSize, o.Concurrency = 5<<20, 2
	})
	runtime.GC()
	base := heap.now()
	stop := heap.watch()
	err := st.Save(testCtx(t, 10*time.Minute), saveTarget("acme", "big", w1))
	stop()
	if err != nil {
		t.Fatalf("Save: %v", err)
	}
	m := readManifest(t, c, bucket, "ws/acme/big/manifest.json")
	if m == nil || m.TarSize < memoryTestMiB<<20 || m.Size < memoryTestMiB<<20 {
		t.Fatalf("manifest %+v does not describe a %d MiB snapshot", m, memoryTestMiB)
	}
	grew := heap.max() - base
	t.Logf("snapshot %d MiB; heap at start %.1f MiB, peak %.1f MiB (+%.1f MiB over %d samples)",
		m.Size>>20, mib(base), mib(heap.max()), mib(grew), heap.count())
	if grew > memoryBoundMiB<<20 {
		t.Fatalf("heap grew by %.1f MiB while saving %d MiB, want at most %d MiB", mib(grew), m.Size>>20, memoryBoundMiB)
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// heapPeak samples the bytes of live and not yet swept heap objects: at
// every part upload (when the part buffers are full) and on a ticker in
// between.
type heapPeak struct {
	mu      sync.Mutex
	peak    uint64
	samples int
}

func newHeapPeak() *heapPeak { return &heapPeak{} }

func (h *heapPeak) now() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func (h *heapPeak) sample() {
	v := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.peak = max(h.peak, v)
	h.samples++
}

func (h *heapPeak) max() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.peak
}

func (h *heapPeak) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.samples
}

// watch samples every millisecond until the returned stop is called.
func (h *heapPeak) watch() (stop func()) {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				h.sample()
			}
		}
	}()
	return func() { close(done); <-stopped }
}

// sampledS3 samples the heap at every part upload.
type sampledS3 struct {
	*s3.Client
	sample func()
}

func (s *sampledS3) UploadPart(ctx context.Context, in *s3.UploadPartInput, opts ...func(*s3.Options)) (*s3.UploadPartOutput, error) {
	s.sample()
	return s.Client.UploadPart(ctx, in, opts...)
}
