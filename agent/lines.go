package agent

import (
	"bytes"
	"io"
	"unicode/utf8"
)

// splitLines reads r to the end and calls emit for each line, without its
// "\n" or "\r\n" terminator. A line longer than max bytes is emitted in
// pieces of at most max bytes, cut on UTF-8 boundaries where possible:
// every piece but the last has partial set. No byte is dropped, and a final
// unterminated line is emitted too. emit must not keep data.
func splitLines(r io.Reader, max int, emit func(data []byte, partial bool)) error {
	buf := make([]byte, 0, min(max, 64<<10)+1)
	chunk := make([]byte, 32<<10)
	for {
		off := 0
		for {
			i := bytes.IndexByte(buf[off:], '\n')
			if i < 0 {
				break
			}
			line := buf[off : off+i]
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1]
			}
			emit(line, false)
			off += i + 1
		}
		for len(buf)-off >= max {
			cut := utf8Cut(buf[off : off+max])
			emit(buf[off:off+cut], true)
			off += cut
		}
		buf = append(buf[:0], buf[off:]...)
		n, err := r.Read(chunk)
		buf = append(buf, chunk[:n]...)
		if err != nil {
			// Emit what is complete, then the unterminated rest.
			if n > 0 {
				continue
			}
			if len(buf) > 0 {
				emit(buf, false)
			}
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}

// utf8Cut returns where to cut b (a full piece) so that a rune split at its
// end goes to the next piece. It never returns less than len(b)-3, nor 0.
func utf8Cut(b []byte) int {
	n := len(b)
	for back := 1; back <= 3 && back <= n; back++ {
		c := b[n-back]
		if c < utf8.RuneSelf {
			return n // ASCII: nothing split
		}
		if utf8.RuneStart(c) {
			if need := runeLen(c); need > back && n-back > 0 {
				return n - back // an incomplete rune starts here
			}
			return n
		}
	}
	return n
}

func runeLen(lead byte) int {
	switch {
	case lead&0xE0 == 0xC0:
		return 2
	case lead&0xF0 == 0xE0:
		return 3
	case lead&0xF8 == 0xF0:
		return 4
	}
	return 1
}
