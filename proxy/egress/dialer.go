package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"time"
)

// Errors from Dialer. The proxy maps them to statuses and audit reasons.
var (
	// ErrDenied: every (or some, see Dialer) resolved address is forbidden.
	ErrDenied = errors.New("destination address denied")
	// ErrResolve: the name did not resolve (NXDOMAIN, no addresses, DNS
	// failure). Maps to 502.
	ErrResolve = errors.New("resolve destination")
	// ErrResolveTimeout: the lookup did not finish within DNSTimeout.
	// Maps to 504.
	ErrResolveTimeout = errors.New("resolve destination timed out")
	// ErrDialTimeout: no checked address answered in time. Maps to 504.
	ErrDialTimeout = errors.New("dial destination timed out")
	// ErrDial: the checked addresses refused or failed. Maps to 502.
	ErrDial = errors.New("dial destination")
)

// DeniedError carries the classification that denied an address.
type DeniedError struct {
	Addr   netip.Addr
	Reason string
}

func (e *DeniedError) Error() string { return fmt.Sprintf("address %s denied: %s", e.Addr, e.Reason) }
func (e *DeniedError) Unwrap() error { return ErrDenied }

// Resolver looks names up. *net.Resolver satisfies it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// DialFunc connects to an exact address ("ip:port"); it must not resolve.
type DialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// Dialer resolves a destination once, classifies every address, and dials
// only addresses it checked: the address that was judged is the address
// that is dialed (no second lookup, so DNS rebinding cannot slip a new
// answer in between). If any resolved address is forbidden the whole answer
// is denied: a name that resolves to both a public and an internal address
// is treated as hostile.
type Dialer struct {
	Resolver Resolver
	Dial     DialFunc
	// DNSTimeout and DialTimeout bound the lookup and the connection
	// (across all addresses tried). Zero means 5s and 10s.
	DNSTimeout  time.Duration
	DialTimeout time.Duration
}

// Target is a destination after parsing and policy.
type Target struct {
	Host Host
	Port uint16
	// AllowPrivate permits Private addresses (never Forbidden ones); set
	// only for a host with an explicit private allowance.
	AllowPrivate bool
}

// Conn is a dialed connection with the address that was checked and used.
type Conn struct {
	net.Conn
	Addr netip.AddrPort
}

// CloseWrite half-closes when the underlying connection can.
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.New("half-close not supported")
}

// Resolve returns the checked addresses for t, or an error wrapping
// ErrResolve or a *DeniedError.
func (d *Dialer) Resolve(ctx context.Context, t Target) ([]netip.Addr, error) {
	var addrs []netip.Addr
	if t.Host.IsIP() {
		addrs = []netip.Addr{t.Host.IP()}
	} else {
		timeout := d.DNSTimeout
		if timeout <= 0 {
			timeout = 5 * time.Second
		}
		lctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		// The trailing dot makes the name fully qualified: no search domains.
		res, err := d.Resolver.LookupNetIP(lctx, "ip", t.Host.Name()+".")
		if err != nil && lctx.Err() != nil && ctx.Err() == nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrResolveTimeout, t.Host.Name(), err)
		}
		if err != nil {
			return nil, fmt.Errorf("%w %s: %v", ErrResolve, t.Host.Name(), err)
		}
		if len(res) == 0 {
			return nil, fmt.Errorf("%w %s: no addresses", ErrResolve, t.Host.Name())
		}
		addrs = res
	}
	for i, a := range addrs {
		a = a.WithZone("")
		addrs[i] = a
		c := Classify(a)
		if c.Class == Forbidden || (c.Class == Private && !t.AllowPrivate) {
			return nil, &DeniedError{Addr: a, Reason: c.Reason}
		}
	}
	return addrs, nil
}

// DialContext resolves, checks and dials t. The returned Conn records the
// address that was dialed.
func (d *Dialer) DialContext(ctx context.Context, t Target) (*Conn, error) {
	addrs, err := d.Resolve(ctx, t)
	if err != nil {
		return nil, err
	}
	timeout := d.DialTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var lastErr error
	for _, a := range addrs {
		ap := netip.AddrPortFrom(a, t.Port)
		c, err := d.Dial(dctx, "tcp", ap.String())
		if err == nil {
			return &Conn{Conn: c, Addr: ap}, nil
		}
		lastErr = err
		if dctx.Err() != nil {
			break
		}
	}
	if dctx.Err() != nil && ctx.Err() == nil {
		return nil, fmt.Errorf("%w: %s:%d: %v", ErrDialTimeout, t.Host, t.Port, lastErr)
	}
	var ne net.Error
	if errors.As(lastErr, &ne) && ne.Timeout() {
		return nil, fmt.Errorf("%w: %s:%d: %v", ErrDialTimeout, t.Host, t.Port, lastErr)
	}
	return nil, fmt.Errorf("%w %s:%d: %v", ErrDial, t.Host, t.Port, lastErr)
}

// NetDialer returns the production DialFunc: a net.Dialer whose Control
// hook classifies the socket's address once more just before connect(2),
// as a second line of defence (it forbids Forbidden addresses; Private ones
// were already vetted per host by the Dialer).
func NetDialer() DialFunc {
	nd := &net.Dialer{
		KeepAlive: 30 * time.Second,
		ControlContext: func(_ context.Context, network, address string, _ syscall.RawConn) error {
			host, port, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			a, err := netip.ParseAddr(host)
			if err != nil {
				return fmt.Errorf("dial %s: not an IP address", address)
			}
			if _, err := strconv.Atoi(port); err != nil {
				return err
			}
			if c := Classify(a); c.Class == Forbidden {
				return &DeniedError{Addr: a, Reason: c.Reason}
			}
			return nil
		},
	}
	return nd.DialContext
}
