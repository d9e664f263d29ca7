package proxy

import (
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/workspaced/workspaced/proxy/egress"
)

// serveConnect opens a tunnel to an allowlisted host:port, dialing the
// address it checked, and relays bytes until either side closes or the
// tunnel is idle for TunnelIdleTimeout.
func (p *Proxy) serveConnect(w http.ResponseWriter, r *http.Request, ws *workspaceState, a *audit) {
	host, port, err := egress.ParseAuthority(r.RequestURI, 0)
	if err != nil {
		deny(w, a, http.StatusBadRequest, "bad_host", err.Error())
		return
	}
	a.host, a.port = host.String(), port
	if !p.checkDomain(w, a, host, port) {
		return
	}
	select {
	case ws.tunnels <- struct{}{}:
		defer func() { <-ws.tunnels }()
	default:
		deny(w, a, http.StatusServiceUnavailable, "too_many_tunnels", "concurrent tunnel limit reached")
		return
	}
	upstream, err := p.dial(r.Context(), host, port)
	if err != nil {
		status, reason := classifyUpstreamError(err)
		var de *egress.DeniedError
		if errors.As(err, &de) {
			a.resolved = de.Addr.String()
		}
		deny(w, a, status, reason, "could not open the tunnel: "+reason)
		return
	}
	defer upstream.Close()
	a.resolved = upstream.Addr.String()
	a.upstream = time.Since(a.start)

	client, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		deny(w, a, http.StatusInternalServerError, "hijack_failed", "cannot hijack the connection")
		return
	}
	defer client.Close()
	a.status = http.StatusOK
	if _, err := client.Write([]byte("HTTP/1.1 200 Connection Established\r\n\r\n")); err != nil {
		return
	}
	m := p.opts.Metrics
	m.ActiveTunnels.Inc()
	defer m.ActiveTunnels.Dec()

	// Bytes the client pipelined after the CONNECT head are already in
	// the server's buffer: send them first.
	if n := brw.Reader.Buffered(); n > 0 {
		buf, _ := brw.Reader.Peek(n)
		if _, err := upstream.Write(buf); err != nil {
			return
		}
		a.bytesUp.Add(int64(n))
	}
	p.relay(client, upstream, a)
}

// relay copies both ways. Each read waits at most the idle timeout, but a
// tunnel stays open while either direction moved bytes within it.
func (p *Proxy) relay(client, upstream net.Conn, a *audit) {
	idle := p.opts.Limits.TunnelIdleTimeout
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	var wg sync.WaitGroup
	pipe := func(dst, src net.Conn, counter *atomic.Int64) {
		defer wg.Done()
		abort := func() {
			// Unblock the other direction: the tunnel is over.
			_ = src.SetReadDeadline(time.Now())
			_ = dst.SetReadDeadline(time.Now())
		}
		buf := make([]byte, 32<<10)
		for {
			_ = src.SetReadDeadline(time.Now().Add(idle))
			n, err := src.Read(buf)
			if n > 0 {
				last.Store(time.Now().UnixNano())
				if _, werr := dst.Write(buf[:n]); werr != nil {
					abort()
					return
				}
				counter.Add(int64(n))
			}
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() && time.Since(time.Unix(0, last.Load())) < idle {
					continue // the other direction is active
				}
				if errors.Is(err, io.EOF) {
					// Half-close: the other direction may still be talking.
					if cw, ok := dst.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
						return
					}
				}
				abort()
				return
			}
		}
	}
	wg.Add(2)
	go pipe(upstream, client, &a.bytesUp)
	go pipe(client, upstream, &a.bytesDown)
	wg.Wait()
}
