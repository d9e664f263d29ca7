package docker

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// AwaitListening blocks until the agent of endpoint has created its Unix
// socket (it binds it as it starts listening), ctx ends, or the socket
// directory cannot be watched. It is signalled by inotify on the socket's
// directory (a bind mount of a host directory), not polled: a caller that
// would otherwise probe /health on a schedule probes once the agent
// listens. An error means "unknown": the caller falls back to probing.
func (r *Runtime) AwaitListening(ctx context.Context, endpoint string) error {
	path, err := r.socketPath(endpoint)
	if err != nil {
		return err
	}
	return awaitSocket(ctx, path)
}

// awaitSocket waits for path to exist, watching its directory.
func awaitSocket(ctx context.Context, path string) error {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return fmt.Errorf("inotify: %w", err)
	}
	f := os.NewFile(uintptr(fd), "inotify") // non-blocking: reads go through the poller
	defer f.Close()
	dir, name := filepath.Split(path)
	if _, err := unix.InotifyAddWatch(fd, filepath.Clean(dir), unix.IN_CREATE|unix.IN_MOVED_TO); err != nil {
		return fmt.Errorf("watch %s: %w", dir, err)
	}
	// After the watch: a socket created before it is seen here, one
	// created after it is an event.
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	stop := context.AfterFunc(ctx, func() { _ = f.SetReadDeadline(time.Now()) })
	defer stop()
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		n, err := f.Read(buf)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("await agent socket %s: %w", path, ctx.Err())
			}
			return fmt.Errorf("read inotify: %w", err)
		}
		if eventsName(buf[:n], name) {
			return nil
		}
	}
}

// eventsName reports whether one of the inotify events in b names name.
func eventsName(b []byte, name string) bool {
	for len(b) >= unix.SizeofInotifyEvent {
		// struct inotify_event: wd, mask, cookie, len (uint32 each), name.
		end := unix.SizeofInotifyEvent + int(binary.NativeEndian.Uint32(b[12:16]))
		if end > len(b) {
			return false
		}
		raw := b[unix.SizeofInotifyEvent:end]
		if i := bytes.IndexByte(raw, 0); i >= 0 {
			raw = raw[:i]
		}
		if string(raw) == name {
			return true
		}
		b = b[end:]
	}
	return false
}
