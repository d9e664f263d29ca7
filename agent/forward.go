package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Forwarder accepts TCP connections and relays each to a Unix socket: under
// Docker the workspace has no network, and the agent carries
// 127.0.0.1:8080 to the host-side credential proxy's socket.
type Forwarder struct {
	// Target is the Unix socket path connections are relayed to.
	Target string
	// DialTimeout bounds connecting to Target (5s if zero).
	DialTimeout time.Duration
	// Logger receives errors; slog.Default() if nil.
	Logger *slog.Logger
}

// Serve relays connections accepted on ln until ctx ends, then closes ln
// and every open connection and returns nil once all relays ended.
func (f *Forwarder) Serve(ctx context.Context, ln net.Listener) error {
	log := f.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "proxy_forwarder")
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stop()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			_ = ln.Close()
			return fmt.Errorf("accept proxy connection: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f.relay(ctx, c); err != nil {
				log.Warn("relay to proxy failed", "err", err)
			}
		}()
	}
}

// relay copies both ways between c and a new connection to Target. An end
// of stream on one side is passed on as a half close; when both directions
// are done, or one fails, both connections are closed.
func (f *Forwarder) relay(ctx context.Context, c net.Conn) error {
	defer c.Close()
	timeout := f.DialTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	d := net.Dialer{Timeout: timeout}
	up, err := d.DialContext(ctx, "unix", f.Target)
	if err != nil {
		return fmt.Errorf("dial %s: %w", f.Target, err)
	}
	defer up.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.Close(); _ = up.Close() })
	defer stop()

	errc := make(chan error, 2)
	go func() { errc <- pipe(up, c) }()
	go func() { errc <- pipe(c, up) }()
	var first error
	for range 2 {
		if err := <-errc; err != nil && first == nil {
			first = err
			_ = c.Close() // unblock the other direction
			_ = up.Close()
		}
	}
	if first != nil && ctx.Err() == nil && !errors.Is(first, net.ErrClosed) {
		return first
	}
	return nil
}

// pipe copies src to dst, then half-closes dst's write side (or closes it).
func pipe(dst, src net.Conn) error {
	_, err := io.Copy(dst, src)
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	} else {
		_ = dst.Close()
	}
	return err
}
