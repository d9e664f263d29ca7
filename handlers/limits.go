package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
)

// Slow or lying clients (docs/operations.md, "Slow and lying clients"):
// headers must arrive within HeaderTimeout, a declared body within
// BodyTimeout of the handler asking for it, a request refused before its
// body is read is answered at once and its connection closed, and one
// client address holds at most MaxConnsPerClient connections. None of it
// bounds how long a response may take: streams last as long as their run.

// HTTPServer returns the http.Server to serve Handler with: header and idle
// timeouts, a header size cap and the server's logger for net/http's own
// messages. No ReadTimeout or WriteTimeout: they would cut long streams;
// bodies get their deadline per request (readBody).
func (s *Server) HTTPServer() *http.Server {
	return &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: s.opts.HeaderTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

// readBody is the middleware of routes with a request body, run after the
// key check: it reads the whole body (at most MaxBodyBytes) under a read
// deadline of BodyTimeout, then clears the deadline so that the stream
// that follows is not cut, and hands the handler the bytes read. A client
// that declares more than it sends gets 408 when the deadline passes.
func (s *Server) readBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.Body == nil || r.Body == http.NoBody {
			return next(c)
		}
		if r.ContentLength > s.opts.MaxBodyBytes {
			return errTooLarge
		}
		rc := http.NewResponseController(c.Response().Writer)
		if err := rc.SetReadDeadline(s.opts.Now().Add(s.opts.BodyTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, s.opts.MaxBodyBytes+1))
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return errBodyTimeout
		}
		if err != nil {
			return badRequest("could not read the request body")
		}
		if int64(len(body)) > s.opts.MaxBodyBytes {
			return errTooLarge
		}
		if err := rc.SetReadDeadline(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
		c.Set(bodyReadKey, true)
		r.Body = io.NopCloser(bytes.NewReader(body))
		return next(c)
	}
}

const bodyReadKey = "workspaced.body_read"

// unreadBody reports whether the request declared a body that the server
// has not read: answering it without closing the connection would make
// net/http read the rest first (up to 256 KiB) before the answer goes out.
func unreadBody(c echo.Context) bool {
	r := c.Request()
	if read, _ := c.Get(bodyReadKey).(bool); read {
		return false
	}
	return r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody
}

// Listener wraps ln so that one client address (IP) holds at most
// MaxConnsPerClient connections at a time; a connection over the limit is
// answered 429 (JSON, Connection: close) and closed without its request
// being read. Zero MaxConnsPerClient returns ln unchanged.
func (s *Server) Listener(ln net.Listener) net.Listener {
	if s.opts.MaxConnsPerClient <= 0 {
		return ln
	}
	return &limitListener{Listener: ln, max: s.opts.MaxConnsPerClient, open: map[string]int{}, refused: s.metrics.connsRefused}
}

type limitListener struct {
	net.Listener
	max     int
	refused interface{ Inc() }

	mu   sync.Mutex
	open map[string]int
}

// tooManyConns is the whole answer to a connection over the limit.
var tooManyConns = rawJSONResponse(http.StatusTooManyRequests, codeTooManyConns, "too many connections from this address")

// rawJSONResponse is a complete HTTP/1.1 response with a JSON error body,
// for answers written on a connection outside net/http.
func rawJSONResponse(status int, code, msg string) []byte {
	body, _ := json.Marshal(errorBody{errorDetail{code, msg}})
	return fmt.Appendf(nil, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
		status, http.StatusText(status), len(body), body)
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		host := clientHost(c.RemoteAddr())
		l.mu.Lock()
		ok := l.open[host] < l.max
		if ok {
			l.open[host]++
		}
		l.mu.Unlock()
		if ok {
			return &limitedConn{Conn: c, release: func() { l.release(host) }}, nil
		}
		l.refused.Inc()
		go refuse(c) // never block Accept on a client
	}
}

func refuse(c net.Conn) {
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.Write(tooManyConns)
	_ = c.Close()
}

func (l *limitListener) release(host string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[host]--; l.open[host] <= 0 {
		delete(l.open, host)
	}
}

func clientHost(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
