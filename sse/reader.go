package sse

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
)

// DefaultMaxEventSize bounds one event (the sum of its field lines) when
// Reader.MaxEventSize is zero. The agent splits output lines at 1 MiB, so
// events stay well under it.
const DefaultMaxEventSize = 4 << 20

// ErrEventTooLarge is returned by Reader.Next when one event, or one line,
// exceeds the size bound. The stream cannot be resumed after it.
var ErrEventTooLarge = errors.New("sse: event too large")

// Reader parses an event stream. It is not safe for concurrent use.
type Reader struct {
	// MaxEventSize bounds the bytes of one event; DefaultMaxEventSize if 0.
	MaxEventSize int
	// Comments makes Next return comment lines as events with IsComment set.
	Comments bool

	br      *bufio.Reader
	started bool
	lastID  string
	skipLF  bool // the previous line ended with CR: a following LF belongs to it
	err     error
	data    bytes.Buffer
	hasData bool
	event   string
	// lastEvent is the last event type read, reused when it repeats.
	lastEvent string
	retry     int
	hint      int // the last retry field of the stream
	size      int
	line      []byte
}

// NewReader returns a Reader on r. A leading UTF-8 byte order mark is skipped,
// as the spec says.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, readBufferSize)}
}

// readBufferSize is the read buffer of a Reader. Lines longer than it are
// assembled across reads (up to MaxEventSize), so it bounds only how much
// one read takes in: 16 KiB keeps a relay's open streams cheap (a backend
// holds thousands) while a burst still arrives in few reads.
const readBufferSize = 16 << 10

// LastEventID is the stream's last event ID so far (for Last-Event-ID).
func (r *Reader) LastEventID() string { return r.lastID }

func (r *Reader) max() int {
	if r.MaxEventSize > 0 {
		return r.MaxEventSize
	}
	return DefaultMaxEventSize
}

// Next returns the next event. At the end of the stream it returns io.EOF;
// an event not terminated by a blank line before the end is discarded, as
// the spec says. After an error every later call returns the same error.
func (r *Reader) Next() (Event, error) {
	if r.err != nil {
		return Event{}, r.err
	}
	for {
		line, err := r.readLine()
		if err != nil {
			r.err = err
			return Event{}, err
		}
		if !r.started {
			r.started = true
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
		}
		if len(line) == 0 {
			if ev, ok := r.dispatch(); ok {
				return ev, nil
			}
			continue
		}
		if line[0] == ':' {
			if r.Comments {
				return Event{IsComment: true, Comment: string(trimSpace1(line[1:]))}, nil
			}
			continue
		}
		r.size += len(line)
		if r.size > r.max() {
			r.err = fmt.Errorf("%w: over %d bytes", ErrEventTooLarge, r.max())
			return Event{}, r.err
		}
		r.field(line)
	}
}

// field processes one non-empty, non-comment line.
func (r *Reader) field(line []byte) {
	name, value := line, []byte(nil)
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		name, value = line[:i], trimSpace1(line[i+1:])
	}
	switch string(name) {
	case "event":
		// A stream's events have few types: the string of the last one
		// is reused when the type repeats (no allocation per event).
		if string(value) != r.lastEvent {
			r.lastEvent = string(value)
		}
		r.event = r.lastEvent
	case "data":
		r.data.Write(value)
		r.data.WriteByte('\n')
		r.hasData = true
	case "id":
		if bytes.IndexByte(value, 0) < 0 {
			r.lastID = string(value)
		}
	case "retry":
		if n, err := strconv.Atoi(string(value)); err == nil && n >= 0 && isDigits(value) {
			r.retry, r.hint = n, n
		}
	}
}

// dispatch ends the event being built. ok is false when there is nothing
// to dispatch (no data field), in which case the buffers are just reset.
func (r *Reader) dispatch() (Event, bool) {
	defer func() {
		r.data.Reset()
		r.hasData, r.event, r.size, r.retry = false, "", 0, 0
	}()
	if !r.hasData {
		return Event{}, false
	}
	data := r.data.Bytes()
	data = data[:len(data)-1] // the spec drops the last LF
	ev := Event{ID: r.lastID, Event: r.event, Data: string(data), Retry: r.retry}
	if ev.Event == "" {
		ev.Event = "message"
	}
	return ev, true
}

// readLine returns the next line without its terminator (CR, LF or CRLF).
// A line longer than the event bound is an error. At the end of input a
// final unterminated line is dropped (it cannot complete an event anyway)
// and io.EOF is returned. A line that lies whole in the read buffer is
// returned in place, without a copy: it is valid until the next read.
func (r *Reader) readLine() ([]byte, error) {
	r.line = r.line[:0]
	for {
		buf, err := r.buffered()
		if err != nil {
			return nil, err
		}
		if r.skipLF {
			r.skipLF = false
			if buf[0] == '\n' {
				_, _ = r.br.Discard(1)
				continue
			}
		}
		i := indexLineEndBytes(buf)
		if i < 0 {
			r.line = append(r.line, buf...)
			_, _ = r.br.Discard(len(buf))
			if len(r.line) > r.max() {
				return nil, fmt.Errorf("%w: line over %d bytes", ErrEventTooLarge, r.max())
			}
			continue
		}
		line := buf[:i]
		if len(r.line) > 0 {
			r.line = append(r.line, line...)
			line = r.line
		}
		r.skipLF = buf[i] == '\r'
		_, _ = r.br.Discard(i + 1)
		if len(line) > r.max() {
			return nil, fmt.Errorf("%w: line over %d bytes", ErrEventTooLarge, r.max())
		}
		return line, nil
	}
}

// buffered returns the bytes the read buffer holds, reading more (and
// blocking) when it holds none. io.EOF at the end of input.
func (r *Reader) buffered() ([]byte, error) {
	if n := r.br.Buffered(); n > 0 {
		buf, _ := r.br.Peek(n)
		return buf, nil
	}
	if _, err := r.br.Peek(1); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("read event stream: %w", err)
	}
	buf, _ := r.br.Peek(r.br.Buffered())
	return buf, nil
}

// indexLineEndBytes is indexLineEnd of a byte slice.
func indexLineEndBytes(b []byte) int {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return bytes.IndexByte(b, '\r')
	}
	if j := bytes.IndexByte(b[:i], '\r'); j >= 0 {
		return j
	}
	return i
}

func trimSpace1(b []byte) []byte {
	if len(b) > 0 && b[0] == ' ' {
		return b[1:]
	}
	return b
}

func isDigits(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// RetryHint is the reconnection time the stream's last "retry:" field
// asked for (0 if none), whether or not an event followed it.
func (r *Reader) RetryHint() time.Duration { return time.Duration(r.hint) * time.Millisecond }
