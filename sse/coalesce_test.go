package sse_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/workspaced/workspaced/sse"
)

// flushCounter is an io.Writer with a Flush() error method that records
// what each flush made visible.
type flushCounter struct {
	buf     bytes.Buffer
	flushed []string // the visible stream after each flush
	fail    error
}

func (f *flushCounter) Write(p []byte) (int, error) { return f.buf.Write(p) }
func (f *flushCounter) Flush() error {
	if f.fail != nil {
		return f.fail
	}
	f.flushed = append(f.flushed, f.buf.String())
	return nil
}

func TestWriterBufferEventAndFlush(t *testing.T) {
	t.Parallel()
	fc := &flushCounter{}
	w := sse.NewWriter(fc)
	for _, d := range []string{"a", "b", "c"} {
		if err := w.BufferEvent(sse.Event{Event: "stdout", Data: d}); err != nil {
			t.Fatal(err)
		}
	}
	if len(fc.flushed) != 0 {
		t.Fatalf("BufferEvent flushed: %q", fc.flushed)
	}
	for range 2 { // the second Flush has nothing to flush
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	want := "event: stdout\ndata: a\n\nevent: stdout\ndata: b\n\nevent: stdout\ndata: c\n\n"
	if len(fc.flushed) != 1 || fc.flushed[0] != want {
		t.Fatalf("flushes %q, want one of %q", fc.flushed, want)
	}
	if err := w.WriteEvent(sse.Event{Event: "done", Data: "{}"}); err != nil || len(fc.flushed) != 2 {
		t.Fatalf("WriteEvent: err %v, %d flushes, want 2", err, len(fc.flushed))
	}
}

// A failed flush is returned by every later write: a relay that buffers
// learns that its client went away on its next event.
func TestWriterErrorSticks(t *testing.T) {
	t.Parallel()
	gone := errors.New("client gone")
	fc := &flushCounter{fail: gone}
	w := sse.NewWriter(fc)
	if err := w.BufferEvent(sse.Event{Data: "a"}); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); !errors.Is(err, gone) {
		t.Fatalf("Flush: %v, want %v", err, gone)
	}
	fc.fail = nil
	for name, f := range map[string]func() error{
		"BufferEvent":  func() error { return w.BufferEvent(sse.Event{Data: "b"}) },
		"WriteEvent":   func() error { return w.WriteEvent(sse.Event{Data: "b"}) },
		"WriteComment": func() error { return w.WriteComment("c") },
		"Flush":        w.Flush,
	} {
		if err := f(); !errors.Is(err, gone) {
			t.Errorf("%s after a failed flush: %v, want %v", name, err, gone)
		}
	}
}

// chunks is a source that returns one chunk per Read, like a connection
// that receives bursts.
type chunks struct {
	parts []string
	reads int
}

func (c *chunks) Read(p []byte) (int, error) {
	if len(c.parts) == 0 {
		return 0, io.EOF
	}
	c.reads++
	n := copy(p, c.parts[0])
	c.parts = c.parts[1:]
	return n, nil
}

// TestFlushBeforeRead relays two bursts (three events, then one) through a
// Reader on FlushBeforeRead: one flush per burst, each before the relay
// reads again, and every event of a burst visible by then.
func TestFlushBeforeRead(t *testing.T) {
	t.Parallel()
	src := &chunks{parts: []string{
		"data: 1\n\ndata: 2\n\ndata: 3\n\n",
		"data: 4\n\n",
	}}
	fc := &flushCounter{}
	w := sse.NewWriter(fc)
	r := sse.NewReader(sse.FlushBeforeRead(src, w))
	var got []string
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev.Data)
		if err := w.BufferEvent(ev); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Join(got, ",") != "1,2,3,4" {
		t.Fatalf("events %q", got)
	}
	ev := func(d string) string { return "event: message\ndata: " + d + "\n\n" }
	want := []string{ev("1") + ev("2") + ev("3"), ev("1") + ev("2") + ev("3") + ev("4")}
	if len(fc.flushed) != len(want) {
		t.Fatalf("%d flushes %q, want %d", len(fc.flushed), fc.flushed, len(want))
	}
	for i := range want {
		if fc.flushed[i] != want[i] {
			t.Errorf("flush %d made %q visible, want %q", i, fc.flushed[i], want[i])
		}
	}
}

// writeCounter counts the Writes and flushes it gets.
type writeCounter struct {
	bytes.Buffer
	writes, flushes int
}

func (w *writeCounter) Write(p []byte) (int, error) { w.writes++; return w.Buffer.Write(p) }
func (w *writeCounter) Flush()                      { w.flushes++ }

// A burst of buffered events reaches the underlying writer in one Write at
// its flush; a burst too long to hold is written out in chunks before the
// flush, unflushed, and nothing is lost or reordered.
func TestWriterCoalescesWrites(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		events     int
		wantWrites func(int) bool
	}{
		{"short burst", 100, func(n int) bool { return n == 1 }},
		{"long burst", 5000, func(n int) bool { return n > 1 && n < 50 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wc := &writeCounter{}
			w := sse.NewWriter(wc)
			var want strings.Builder
			for i := range tt.events {
				ev := sse.Event{ID: fmt.Sprint(i + 1), Event: "stdout", Data: strings.Repeat("x", i%50)}
				if err := w.BufferEvent(ev); err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(&want, "id: %s\nevent: stdout\ndata: %s\n\n", ev.ID, ev.Data)
			}
			if wc.flushes != 0 {
				t.Fatalf("%d flushes before Flush", wc.flushes)
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			if !tt.wantWrites(wc.writes) || wc.flushes != 1 {
				t.Errorf("%d events: %d writes, %d flushes", tt.events, wc.writes, wc.flushes)
			}
			if wc.String() != want.String() {
				t.Errorf("stream differs from the events written (%d bytes, want %d)", wc.Len(), want.Len())
			}
		})
	}
}
