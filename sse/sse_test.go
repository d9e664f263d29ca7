package sse_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/workspaced/workspaced/sse"
)

func readAll(t *testing.T, r *sse.Reader) []sse.Event {
	t.Helper()
	var evs []sse.Event
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			return evs
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		evs = append(evs, ev)
	}
}

func TestReaderSpec(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want []sse.Event
	}{
		{"simple", "data: a\n\n", []sse.Event{{Event: "message", Data: "a"}}},
		{"multi-line data", "data: a\ndata: b\n\n", []sse.Event{{Event: "message", Data: "a\nb"}}},
		{"event type and id", "id: 7\nevent: done\ndata: {}\n\n", []sse.Event{{ID: "7", Event: "done", Data: "{}"}}},
		{"CRLF and CR line ends", "data: a\r\ndata: b\rdata: c\r\n\r\n", []sse.Event{{Event: "message", Data: "a\nb\nc"}}},
		{"no space after colon", "data:x\n\n", []sse.Event{{Event: "message", Data: "x"}}},
		{"only one space stripped", "data:  x\n\n", []sse.Event{{Event: "message", Data: " x"}}},
		{"field without colon", "data\n\n", []sse.Event{{Event: "message", Data: ""}}},
		{"comments ignored", ": hi\ndata: a\n: there\n\n", []sse.Event{{Event: "message", Data: "a"}}},
		{"no data, no event", "event: x\n\ndata: y\n\n", []sse.Event{{Event: "message", Data: "y"}}},
		{"id carries over", "id: 1\ndata: a\n\ndata: b\n\n", []sse.Event{{ID: "1", Event: "message", Data: "a"}, {ID: "1", Event: "message", Data: "b"}}},
		{"id with NUL ignored", "id: 1\x002\ndata: a\n\n", []sse.Event{{Event: "message", Data: "a"}}},
		{"retry digits", "retry: 1500\ndata: a\n\n", []sse.Event{{Event: "message", Data: "a", Retry: 1500}}},
		{"retry junk ignored", "retry: 15x\ndata: a\n\n", []sse.Event{{Event: "message", Data: "a"}}},
		{"unknown field ignored", "foo: bar\ndata: a\n\n", []sse.Event{{Event: "message", Data: "a"}}},
		{"unterminated event dropped", "data: a\n\ndata: b\n", []sse.Event{{Event: "message", Data: "a"}}},
		{"BOM skipped", "\xef\xbb\xbfdata: a\n\n", []sse.Event{{Event: "message", Data: "a"}}},
		{"trailing newline in data kept", "data: a\ndata:\n\n", []sse.Event{{Event: "message", Data: "a\n"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := readAll(t, sse.NewReader(strings.NewReader(tt.in)))
			if len(got) != len(tt.want) {
				t.Fatalf("got %d events %+v, want %+v", len(got), got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("event %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// oneByte returns its input a byte at a time, to cross every buffer edge
// (a CR at the end of one read and its LF at the start of the next).
type oneByte struct{ r io.Reader }

func (o oneByte) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return o.r.Read(p[:1])
}

func TestReaderSplitReads(t *testing.T) {
	t.Parallel()
	in := "data: a\r\n\r\ndata: b\r\r"
	got := readAll(t, sse.NewReader(oneByte{strings.NewReader(in)}))
	if len(got) != 2 || got[0].Data != "a" || got[1].Data != "b" {
		t.Fatalf("got %+v", got)
	}
}

func TestReaderComments(t *testing.T) {
	t.Parallel()
	r := sse.NewReader(strings.NewReader(": heartbeat\ndata: a\n\n"))
	r.Comments = true
	got := readAll(t, r)
	if len(got) != 2 || !got[0].IsComment || got[0].Comment != "heartbeat" || got[1].Data != "a" {
		t.Fatalf("got %+v", got)
	}
}

func TestReaderMaxEventSize(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in string }{
		{"one long line", "data: " + strings.Repeat("x", 200) + "\n\n"},
		{"many lines", strings.Repeat("data: "+strings.Repeat("x", 20)+"\n", 20) + "\n"},
		{"unterminated long line", strings.Repeat("x", 500)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := sse.NewReader(strings.NewReader(tt.in))
			r.MaxEventSize = 100
			if _, err := r.Next(); !errors.Is(err, sse.ErrEventTooLarge) {
				t.Fatalf("Next error = %v, want ErrEventTooLarge", err)
			}
			if _, err := r.Next(); !errors.Is(err, sse.ErrEventTooLarge) {
				t.Fatalf("second Next error = %v, want the same error", err)
			}
		})
	}
}

func TestWriterRoundTrip(t *testing.T) {
	t.Parallel()
	events := []sse.Event{
		{ID: "1", Event: "message", Data: `{"type":"system"}`},
		{ID: "2", Event: "stdout", Data: "line one\nline two\r\nline three\rend"},
		{ID: "3", Event: "stdout", Data: ""},
		{ID: "4", Event: "log", Data: "trailing\n"},
		{ID: "5", Event: "done", Data: `{"exit_code":0}`, Retry: 3000},
	}
	var buf bytes.Buffer
	w := sse.NewWriter(&buf)
	for _, e := range events {
		if err := w.WriteEvent(e); err != nil {
			t.Fatalf("WriteEvent: %v", err)
		}
		if err := w.WriteComment("beat\nbeat"); err != nil {
			t.Fatalf("WriteComment: %v", err)
		}
	}
	got := readAll(t, sse.NewReader(&buf))
	if len(got) != len(events) {
		t.Fatalf("got %d events, want %d", len(got), len(events))
	}
	for i, e := range events {
		e.Data = strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(e.Data)
		if got[i] != e {
			t.Errorf("event %d = %+v, want %+v", i, got[i], e)
		}
	}
}

func TestWriterRejectsBadFields(t *testing.T) {
	t.Parallel()
	w := sse.NewWriter(io.Discard)
	for _, e := range []sse.Event{{ID: "a\nb"}, {ID: "a\x00"}, {Event: "x\ry"}} {
		if err := w.WriteEvent(e); !errors.Is(err, sse.ErrInvalidField) {
			t.Errorf("WriteEvent(%+v) = %v, want ErrInvalidField", e, err)
		}
	}
}

func TestWriterFlushesResponse(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	sse.SetHeaders(rec.Header())
	w := sse.NewWriter(http.ResponseWriter(rec))
	if err := w.WriteEvent(sse.Event{Event: "x", Data: "y"}); err != nil {
		t.Fatal(err)
	}
	if !rec.Flushed {
		t.Fatal("response not flushed after an event")
	}
	if ct := rec.Header().Get("Content-Type"); ct != sse.ContentType {
		t.Fatalf("Content-Type = %q", ct)
	}
}

func FuzzReader(f *testing.F) {
	f.Add([]byte("id: 1\nevent: message\ndata: {\"a\":1}\n\n"))
	f.Add([]byte("data: a\r\ndata: b\r\r: c\n\n"))
	f.Add([]byte("retry: 10\nid\ndata\n\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := sse.NewReader(bytes.NewReader(in))
		r.MaxEventSize = 256
		r.Comments = true
		for i := 0; ; i++ {
			ev, err := r.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, sse.ErrEventTooLarge) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if i > len(in) {
				t.Fatalf("more events (%d) than input bytes", i)
			}
			if ev.IsComment {
				continue
			}
			if len(ev.Data) > 256 {
				t.Fatalf("event data %d bytes over the bound", len(ev.Data))
			}
			// What was read must survive a write and a re-read.
			var buf bytes.Buffer
			if err := sse.NewWriter(&buf).WriteEvent(sse.Event{ID: ev.ID, Event: ev.Event, Data: ev.Data}); err != nil {
				continue // ids and types read from the wire never hold line ends
			}
			back, err := sse.NewReader(&buf).Next()
			if err != nil || back.Data != ev.Data || back.Event != ev.Event || back.ID != ev.ID {
				t.Fatalf("round trip of %+v gave %+v, %v", ev, back, err)
			}
		}
	})
}

// FuzzReaderChunks reads the same input whole and in reads of 1 to 7
// bytes: the events, errors and final state must not depend on where the
// reads cut it (the Reader scans its buffer for whole lines and assembles
// the others across reads).
func FuzzReaderChunks(f *testing.F) {
	f.Add([]byte("id: 1\nevent: message\ndata: {\"a\":1}\n\n"), uint8(3))
	f.Add([]byte("data: a\r\ndata: b\r\r: c\n\n"), uint8(1))
	f.Add([]byte("retry: 10\nid\ndata\n\nevent: x\rdata: y\r\r\n"), uint8(2))
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		whole := sse.NewReader(bytes.NewReader(in))
		cut := sse.NewReader(&chunker{in: in, n: int(chunk%7) + 1})
		whole.MaxEventSize, cut.MaxEventSize = 64, 64
		whole.Comments, cut.Comments = chunk&8 != 0, chunk&8 != 0
		for {
			a, errA := whole.Next()
			b, errB := cut.Next()
			if a != b || (errA == nil) != (errB == nil) || (errA != nil && errA.Error() != errB.Error()) {
				t.Fatalf("whole: %+v, %v; in reads of %d: %+v, %v", a, errA, int(chunk%7)+1, b, errB)
			}
			if errA != nil {
				if whole.RetryHint() != cut.RetryHint() || whole.LastEventID() != cut.LastEventID() {
					t.Fatalf("whole: hint %v id %q; cut: hint %v id %q", whole.RetryHint(), whole.LastEventID(), cut.RetryHint(), cut.LastEventID())
				}
				return
			}
		}
	})
}

// chunker returns its input n bytes per Read at most.
type chunker struct {
	in []byte
	n  int
}

func (c *chunker) Read(p []byte) (int, error) {
	if len(c.in) == 0 {
		return 0, io.EOF
	}
	k := min(len(p), c.n, len(c.in))
	copy(p, c.in[:k])
	c.in = c.in[k:]
	return k, nil
}
