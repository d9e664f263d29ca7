package sse

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
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
type Writer struct {
	mu      sync.Mutex
	w       io.Writer
	flush   func() error
	buf     bytes.Buffer // reused: Reset keeps its capacity
	pending bool         // written, not flushed
	err     error        // the first failed write or flush: every later call returns it
}

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
// the client with the next flush (Flush, a flushing write, or the
// underlying writer's own buffer filling up). A failed write or flush
// before is returned again.
func (sw *Writer) BufferEvent(e Event) error { return sw.writeEvent(e, false) }

// Flush flushes what BufferEvent wrote, if anything.
func (sw *Writer) Flush() error {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.err != nil || !sw.pending {
		return sw.err
	}
	return sw.doFlush()
}

func (sw *Writer) writeEvent(e Event, flush bool) error {
	if strings.ContainsAny(e.ID, "\r\n\x00") {
		return fmt.Errorf("%w: id %q", ErrInvalidField, e.ID)
	}
	if strings.ContainsAny(e.Event, "\r\n") {
		return fmt.Errorf("%w: event %q", ErrInvalidField, e.Event)
	}
	sw.mu.Lock()
	defer sw.mu.Unlock()
	b := &sw.buf
	b.Reset()
	if e.ID != "" {
		b.WriteString("id: ")
		b.WriteString(e.ID)
		b.WriteByte('\n')
	}
	if e.Event != "" {
		b.WriteString("event: ")
		b.WriteString(e.Event)
		b.WriteByte('\n')
	}
	if e.Retry > 0 {
		fmt.Fprintf(b, "retry: %d\n", e.Retry)
	}
	writeLines(b, "data: ", e.Data)
	b.WriteByte('\n')
	return sw.send(flush)
}

// WriteComment writes a comment line (": text") and flushes; readers ignore
// it, proxies see traffic. Multi-line text becomes several comment lines.
func (sw *Writer) WriteComment(text string) error {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	sw.buf.Reset()
	writeLines(&sw.buf, ": ", text)
	return sw.send(true)
}

// send writes buf and, if flush, flushes. Called with mu held.
func (sw *Writer) send(flush bool) error {
	if sw.err != nil {
		return sw.err
	}
	if _, err := sw.w.Write(sw.buf.Bytes()); err != nil {
		sw.err = fmt.Errorf("write event: %w", err)
		return sw.err
	}
	sw.pending = true
	if !flush {
		return nil
	}
	return sw.doFlush()
}

// doFlush flushes the underlying writer. Called with mu held.
func (sw *Writer) doFlush() error {
	if err := sw.flush(); err != nil {
		sw.err = fmt.Errorf("flush event: %w", err)
		return sw.err
	}
	sw.pending = false
	return nil
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

// writeLines writes one prefixed line per line of s (split at CRLF, CR or LF).
func writeLines(b *bytes.Buffer, prefix, s string) {
	for {
		i := strings.IndexAny(s, "\r\n")
		if i < 0 {
			break
		}
		b.WriteString(prefix)
		b.WriteString(s[:i])
		b.WriteByte('\n')
		if s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n' {
			i++
		}
		s = s[i+1:]
	}
	b.WriteString(prefix)
	b.WriteString(s)
	b.WriteByte('\n')
}

// WriteRetry writes a "retry:" field alone (no event is dispatched; a
// reader sets its reconnection time to ms milliseconds) and flushes.
func (sw *Writer) WriteRetry(ms int) error {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	sw.buf.Reset()
	fmt.Fprintf(&sw.buf, "retry: %d\n\n", ms)
	return sw.send(true)
}
