package egress

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"
)

// ErrRefusedUpstream: the egress proxy answered the CONNECT with something
// other than 200. A *RefusedError carries its status and reason.
var ErrRefusedUpstream = errors.New("egress proxy refused the tunnel")

// RefusedError is an egress proxy's non-200 answer to CONNECT.
type RefusedError struct {
	Status int
	// Reason is the egress proxy's X-Proxy-Error header (empty if absent).
	Reason string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("egress proxy answered %d %s", e.Status, e.Reason)
}

// Unwrap maps the status onto the Dialer's errors, so the caller answers
// its client as if it had dialed itself: 403 → ErrDenied, 504 →
// ErrDialTimeout, anything else → ErrDial; ErrRefusedUpstream always.
func (e *RefusedError) Unwrap() []error {
	switch e.Status {
	case http.StatusForbidden:
		return []error{ErrRefusedUpstream, ErrDenied}
	case http.StatusGatewayTimeout:
		return []error{ErrRefusedUpstream, ErrDialTimeout}
	}
	return []error{ErrRefusedUpstream, ErrDial}
}

// Via reaches destinations through an egress proxy: it dials the proxy
// (Addr, host:port, an address of the deployment's own network, so private
// addresses are allowed for it and only for it) and asks it for a tunnel
// with CONNECT host:port, by name. The egress proxy resolves, checks and
// dials; this side never resolves the destination. Used by a proxy whose
// own network reaches nothing but the egress tier (the ECS sidecar,
// docs/decisions.md D21).
type Via struct {
	Addr   string
	Dialer *Dialer
}

// ParseVia checks an egress proxy address: host:port, host a name or an
// IP, port 1-65535.
func ParseVia(addr string) (Host, uint16, error) {
	h, p, err := ParseAuthority(addr, 0)
	if err != nil {
		return Host{}, 0, err
	}
	if p == 0 {
		return Host{}, 0, fmt.Errorf("egress proxy %q: want host:port", addr)
	}
	return h, p, nil
}

// DialContext opens a tunnel to t through the egress proxy. The returned
// Conn's Addr is the egress proxy's address (the one dialed).
func (v *Via) DialContext(ctx context.Context, t Target) (*Conn, error) {
	host, port, err := ParseVia(v.Addr)
	if err != nil {
		return nil, err
	}
	c, err := v.Dialer.DialContext(ctx, Target{Host: host, Port: port, AllowPrivate: true})
	if err != nil {
		return nil, fmt.Errorf("egress proxy %s: %w", v.Addr, err)
	}
	timeout := v.Dialer.DialTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = c.SetDeadline(deadline)
	// Cancelling ctx during the handshake closes the connection.
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()

	authority := t.Host.String() + ":" + strconv.Itoa(int(t.Port))
	req := "CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		c.Close()
		return nil, v.handshakeErr(ctx, err)
	}
	br := bufio.NewReaderSize(c, 4096)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		c.Close()
		return nil, v.handshakeErr(ctx, err)
	}
	if resp.StatusCode != http.StatusOK {
		c.Close()
		return nil, &RefusedError{Status: resp.StatusCode, Reason: resp.Header.Get("X-Proxy-Error")}
	}
	if !stop() {
		c.Close()
		return nil, ctx.Err()
	}
	_ = c.SetDeadline(time.Time{})
	if br.Buffered() == 0 {
		return c, nil
	}
	return &Conn{Conn: &bufferedConn{Conn: c, r: br}, Addr: c.Addr}, nil
}

func (v *Via) handshakeErr(ctx context.Context, err error) error {
	var ne net.Error
	if ctx.Err() == nil && errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%w: egress proxy %s: %v", ErrDialTimeout, v.Addr, err)
	}
	return fmt.Errorf("%w: egress proxy %s: %v", ErrDial, v.Addr, err)
}

// bufferedConn returns what the handshake's reader already buffered before
// reading the connection again.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// CloseWrite half-closes the tunnel when the connection can.
func (b *bufferedConn) CloseWrite() error {
	if cw, ok := b.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.New("half-close not supported")
}
