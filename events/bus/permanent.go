package bus

import (
	"errors"

	"github.com/workspaced/workspaced/events"
	"github.com/workspaced/workspaced/workspace"
)

// permanentError marks an error retrying cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as not worth retrying: a handler returning it sends
// the message straight to the poison destination. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or anything it wraps, is permanent:
// marked with Permanent, a decoding failure (events.ErrMalformed,
// events.ErrUnsupportedVersion) or a terminal runtime error
// (workspace.IsTerminal).
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p) ||
		errors.Is(err, events.ErrMalformed) ||
		errors.Is(err, events.ErrUnsupportedVersion) ||
		workspace.IsTerminal(err)
}
