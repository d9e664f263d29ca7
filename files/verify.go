package files

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"
)

// errMismatch marks a snapshot whose bytes do not match its manifest.
var errMismatch = errors.New("snapshot does not match its manifest")

// firstFailure records the first failure while a snapshot streams into the
// agent, and whether it proves the snapshot invalid (a mismatch or a
// malformed gzip stream) rather than a failed read (retry). The HTTP
// transport reads the body on its own goroutine, which may still run when
// PutFiles returned: hence the lock.
type firstFailure struct {
	mu      sync.Mutex
	err     error
	invalid bool
}

func (f *firstFailure) set(err error, invalid bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err, f.invalid = err, invalid
	}
}

// wrap returns the recorded failure as the error Restore reports, or nil.
func (f *firstFailure) wrap(key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.err == nil:
		return nil
	case f.invalid:
		return fmt.Errorf("%w: snapshot %s: %v", ErrInvalidSnapshot, key, f.err)
	default:
		return fmt.Errorf("read snapshot %s: %w", key, f.err)
	}
}

// verifier reads the snapshot object, hashing and counting it, and fails
// as soon as it runs past the manifest's size.
type verifier struct {
	r    io.Reader
	h    hash.Hash
	size int64
	sum  []byte
	n    int64
	fail *firstFailure
	err  error // sticky
}

func (v *verifier) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	switch {
	case v.n > v.size:
		v.err = fmt.Errorf("%w: longer than %d bytes", errMismatch, v.size)
		v.fail.set(v.err, true)
		return 0, v.err
	case err != nil && !errors.Is(err, io.EOF):
		v.err = err
		v.fail.set(err, false)
	}
	return n, err
}

// finish reads the object to its end and checks its size and digest. The
// holdback calls it when the tar stream ended, before releasing its tail.
func (v *verifier) finish() error {
	if _, err := io.Copy(io.Discard, v); err != nil {
		return err
	}
	switch got := v.h.Sum(nil); {
	case v.n != v.size:
		v.err = fmt.Errorf("%w: %d bytes, want %d", errMismatch, v.n, v.size)
	case subtle.ConstantTimeCompare(got, v.sum) != 1:
		v.err = fmt.Errorf("%w: sha256 %x, want %x", errMismatch, got, v.sum)
	default:
		return nil
	}
	v.fail.set(v.err, true)
	return v.err
}

// holdbackBytes is how much of the decompressed stream is held back until
// the snapshot is verified. A tar stream ends in at least two zero blocks
// (1 KiB; tar tools may pad to a 10 KiB record) and the agent stops
// reading there and commits: withholding more than any such tail means
// the agent cannot see the end of the archive before the check passed,
// and a failed check breaks the request instead.
const holdbackBytes = 64 << 10

// readChunk is how much the holdback reads at a time.
const readChunk = 32 << 10

// holdback passes r through but keeps the last holdbackBytes back until r
// ended and end() returned nil; if end() fails, Read returns its error
// and never the tail. A failure of r (a malformed gzip stream, or the
// verifier's own error passed through) is recorded in fail as invalid,
// unless the verifier recorded a failure first.
type holdback struct {
	r    io.Reader
	end  func() error
	fail *firstFailure
	buf  []byte // the last bytes read; buf[off:] are not yet returned
	off  int
	eof  bool  // r ended and end() passed
	err  error // sticky (io.EOF once drained)
}

func (h *holdback) Read(p []byte) (int, error) {
	if h.buf == nil {
		h.buf = make([]byte, 0, holdbackBytes+readChunk)
	}
	for {
		pending := h.buf[h.off:]
		if h.eof && len(pending) == 0 {
			h.err = io.EOF
		}
		if h.err != nil {
			return 0, h.err
		}
		if avail := len(pending) - holdbackBytes; h.eof || avail > 0 {
			if !h.eof {
				pending = pending[:avail]
			}
			n := copy(p, pending)
			h.off += n
			return n, nil
		}
		h.fill()
	}
}

// fill reads more of r into buf, compacting it first.
func (h *holdback) fill() {
	if h.off > 0 {
		n := copy(h.buf, h.buf[h.off:])
		h.buf, h.off = h.buf[:n], 0
	}
	n, err := h.r.Read(h.buf[len(h.buf):cap(h.buf)])
	h.buf = h.buf[:len(h.buf)+n]
	switch {
	case errors.Is(err, io.EOF):
		if err := h.end(); err != nil {
			h.err = err
			return
		}
		h.eof = true
	case err != nil:
		h.err = err
		h.fail.set(err, true)
	}
}
