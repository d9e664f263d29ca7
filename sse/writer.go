package sse

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// ErrInvalidField is returned by Writer when an id or event type contains a
// line break (or an id a NUL), which the format cannot carry.
var ErrInvalidField = errors.New("sse: invalid field")

// Writer writes events to an event stream. WriteEvent and WriteComment
// write one complete event or comment and flush it; BufferEvent writes one
// without flushing, for a relay that coalesces a burst of events into few
// flushes (see Flush and FlushBeforeRead). A Writer is safe for concurrent
// use (a heartbeat goroutine and the event loop may share one).
//
// Buffered events are framed into the Writer's own buffer and handed to the
// underlying writer in one Write when they are flushed or pass
// writeChunk bytes: a burst costs one Write of the underlying writer (an
// http.ResponseWriter's per-call work and its chunking) per chunk instead
// of one per event. The buffer is taken from a pool for a burst and given
// back at its flush, so an idle Writer holds none.
type Writer struct {
	mu      sync.Mutex
	w       io.Writer
	flush   func() error
	buf     *[]byte // framed events not yet written to w; nil while idle
	pending bool    // written to w, not flushed
	err     error   // the first failed write or flush: every later call returns it
}

// writeChunk is how many framed bytes a Writer gathers before it writes
// them to the underlying writer unflushed; maxPooled bounds the buffers it
// keeps for reuse (one large event does not pin its buffer).
const (
	writeChunk = 32 << 10
	maxPooled  = 64 << 10
)

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// NewWriter returns a Writer on w. If w is an http.ResponseWriter it is
// flushed through http.ResponseController (which unwraps middleware
// wrappers); otherwise a Flush() error or Flush() method is used when w has
// one. NewWriter does not set headers; see SetHeaders.
func NewWriter(w io.Writer) *Writer {
	sw := &Writer{w: w, flush: func() error { return nil }}
	switch f := w.(type) {
	case http.ResponseWriter:
		rc := http.NewResponseController(f)
		sw.flush = rc.Flush
	case interface{ Flush() error }:
		sw.flush = f.Flush
	case interface{ Flush() }:
		sw.flush = func() error { f.Flush(); return nil }
	}
	return sw
}

// SetHeaders sets the response headers of an event stream: the content type,
// no caching, and no buffering by nginx-style proxies.
func SetHeaders(h http.Header) {
	h.Set("Content-Type", ContentType)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
}

// WriteEvent writes e (ID, Event, Data and Retry; Comment is ignored) and
// flushes. Data may hold any text: each of its lines (split at LF, CRLF or
// CR) becomes one data field, so a reader gets it back with line ends
// normalised to LF. An event with empty Data is still delivered, with
// empty data.
func (sw *Writer) WriteEvent(e Event) error { return sw.writeEvent(e, true) }

// BufferEvent writes e like WriteEvent but does not flush it: it reaches
// the client with the next flush (Flush, a flushing write), or unflushed
// once the buffered events pass a few tens of KiB. A failed write or flush
// before is returned again.
func (sw *Writer) BufferEvent(e Event) error { return sw.writeEvent(e, false) }

// Flush flushes what BufferEvent wrote, if anything.
func (sw *Writer) Flush() error {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	return sw.send(true)
}

func (sw *Writer) writeEvent(e Event, flush bool) error {
	if hasByte(e.ID, '\r', '\n', 0) {
		return fmt.Errorf("%w: id %q", ErrInvalidField, e.ID)
	}
	if hasByte(e.Event, '\r', '\n', '\n') {
		return fmt.Errorf("%w: event %q", ErrInvalidField, e.Event)
	}
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.err != nil {
		return sw.err
	}
	b := sw.buffer()
	if e.ID != "" {
		b = append(b, "id: "...)
		b = append(b, e.ID...)
		b = append(b, '\n')
	}
	if e.Event != "" {
		b = append(b, "event: "...)
		b = append(b, e.Event...)
		b = append(b, '\n')
	}
	if e.Retry > 0 {
		b = append(b, "retry: "...)
		b = strconv.AppendInt(b, int64(e.Retry), 10)
		b = append(b, '\n')
	}
	b = appendLines(b, "data: ", e.Data)
	*sw.buf = append(b, '\n')
	return sw.send(flush)
}

// WriteComment writes a comment line (": text") and flushes; readers ignore
// it, proxies see traffic. Multi-line text becomes several comment lines.
func (sw *Writer) WriteComment(text string) error {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.err != nil {
		return sw.err
	}
	*sw.buf = appendLines(sw.buffer(), ": ", text)
	return sw.send(true)
}

// WriteRetry writes a "retry:" field alone (no event is dispatched; a
// reader sets its reconnection time to ms milliseconds) and flushes.
func (sw *Writer) WriteRetry(ms int) error {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.err != nil {
		return sw.err
	}
	b := append(sw.buffer(), "retry: "...)
	b = strconv.AppendInt(b, int64(ms), 10)
	*sw.buf = append(b, '\n', '\n')
	return sw.send(true)
}

// buffer returns the buffered bytes to append to, taking a buffer from
// the pool if the Writer holds none. Called with mu held; the caller
// stores what it appended back into *sw.buf.
func (sw *Writer) buffer() []byte {
	if sw.buf == nil {
		sw.buf = bufPool.Get().(*[]byte)
	}
	return *sw.buf
}

// send writes the buffered bytes to w when flush is set or they pass
// writeChunk, and then, if flush, flushes w. Called with mu held.
func (sw *Writer) send(flush bool) error {
	if sw.err != nil {
		return sw.err
	}
	if sw.buf != nil && (flush || len(*sw.buf) >= writeChunk) {
		_, err := sw.w.Write(*sw.buf)
		*sw.buf = (*sw.buf)[:0]
		if flush || err != nil {
			sw.release() // the burst is over: an idle Writer holds no buffer
		}
		if err != nil {
			sw.err = fmt.Errorf("write event: %w", err)
			return sw.err
		}
		sw.pending = true
	}
	if !flush || !sw.pending {
		return nil
	}
	if err := sw.flush(); err != nil {
		sw.err = fmt.Errorf("flush event: %w", err)
		return sw.err
	}
	sw.pending = false
	return nil
}

// release gives the (empty) buffer back to the pool, dropping one that
// grew past maxPooled. Called with mu held.
func (sw *Writer) release() {
	if cap(*sw.buf) <= maxPooled {
		bufPool.Put(sw.buf)
	}
	sw.buf = nil
}

// FlushBeforeRead returns a reader of src that flushes w before every read
// from src. A relay that reads events from src through a buffered parser
// (Reader) and passes them on with BufferEvent thus flushes exactly when
// the source has nothing more buffered, before it may block waiting for
// more: a burst goes out in few flushes, and a lone event as soon as it
// was written (no timer, no added latency). A flush error is not returned
// by Read: the relay's next write returns it.
func FlushBeforeRead(src io.Reader, w *Writer) io.Reader {
	return BeforeRead(src, func() { _ = w.Flush() })
}

// BeforeRead returns a reader of src that calls f before every read from
// src (FlushBeforeRead with the caller's own flush, for a relay whose
// writer may change between reads).
func BeforeRead(src io.Reader, f func()) io.Reader { return hookReader{src, f} }

type hookReader struct {
	r io.Reader
	f func()
}

func (h hookReader) Read(p []byte) (int, error) {
	h.f()
	return h.r.Read(p)
}

// appendLines appends one prefixed line per line of s (split at CRLF, CR
// or LF).
func appendLines(b []byte, prefix, s string) []byte {
	for {
		i := indexLineEnd(s)
		if i < 0 {
			break
		}
		b = append(b, prefix...)
		b = append(b, s[:i]...)
		b = append(b, '\n')
		if s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n' {
			i++
		}
		s = s[i+1:]
	}
	b = append(b, prefix...)
	b = append(b, s...)
	return append(b, '\n')
}

// indexLineEnd is the index of the first CR or LF in s, or -1: two
// vectorised byte searches rather than strings.IndexAny's byte loop.
func indexLineEnd(s string) int {
	i := strings.IndexByte(s, '\n')
	if i < 0 {
		return strings.IndexByte(s, '\r')
	}
	if j := strings.IndexByte(s[:i], '\r'); j >= 0 {
		return j
	}
	return i
}

// hasByte reports whether s holds any of a, b, c.
func hasByte(s string, a, b, c byte) bool {
	for i := 0; i < len(s); i++ {
		if x := s[i]; x == a || x == b || x == c {
			return true
		}
	}
	return false
}
