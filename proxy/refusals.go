package proxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Requests net/http refuses before any handler runs — a header block over
// MaxHeaderBytes (431), a Transfer-Encoding it does not implement (501),
// a malformed request line or header, two Content-Lengths, a missing Host
// (400) — are answered by net/http itself with a plain-text response
// written straight onto the connection, which no handler sees. keyedConn
// recognises that response and replaces it with the proxy's own refusal:
// JSON body, X-Proxy-Error, an audit line and a decisions_total count,
// like every other deny.
//
// Recognised by shape and by time: net/http writes it in one Write whose
// header block is exactly serverErrorHeaders (Content-Type before
// Connection: a handler's response has its headers sorted, and a Date),
// and only while no handler of the connection is running. ServeHTTP
// flushes its response before it returns, so bytes relayed from an
// upstream (tunnels, forwarded bodies) are never inspected.

// serverErrorHeaders is net/http's header block of those responses.
const serverErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

// serverRefusal parses a response net/http wrote before any handler ran:
// its status and the status line's text ("Bad Request: missing required
// Host header").
func serverRefusal(b []byte) (status int, text string, ok bool) {
	rest, found := bytes.CutPrefix(b, []byte("HTTP/1.1 "))
	if !found || len(rest) < 4 || rest[3] != ' ' {
		return 0, "", false
	}
	line, _, found := bytes.Cut(rest, []byte(serverErrorHeaders))
	if !found || bytes.ContainsAny(line, "\r\n") {
		return 0, "", false
	}
	status, err := strconv.Atoi(string(line[:3]))
	if err != nil || status < 400 || status > 599 {
		return 0, "", false
	}
	return status, string(line[4:]), true
}

// refusalReason names a net/http refusal in audit lines and metrics.
func refusalReason(status int) string {
	switch status {
	case http.StatusRequestHeaderFieldsTooLarge:
		return "header_too_large"
	case http.StatusNotImplemented:
		return "bad_transfer_encoding"
	}
	return "malformed_request"
}

// refuseMalformed audits and counts a refusal net/http made and returns
// the response to write in place of net/http's.
func (p *Proxy) refuseMalformed(ws *workspaceState, status int, text string) []byte {
	a := &audit{id: newRequestID(), workspace: ws.key, route: routeInvalid, start: time.Now(),
		decision: "deny", reason: refusalReason(status), status: status}
	p.finish(a)
	body, _ := json.Marshal(map[string]string{"error": a.reason, "message": text, "request_id": a.id})
	body = append(body, '\n')
	return fmt.Appendf(nil, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nX-Proxy-Error: %s\r\nX-Proxy-Request-Id: %s\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
		status, http.StatusText(status), a.reason, a.id, len(body), body)
}

// Write passes the connection's bytes on, except a refusal net/http wrote
// on its own (see above), which it replaces with the proxy's.
func (c *keyedConn) Write(b []byte) (int, error) {
	if c.handlers.Load() == 0 && c.p != nil {
		if status, text, ok := serverRefusal(b); ok {
			if _, err := c.Conn.Write(c.p.refuseMalformed(c.ws, status, text)); err != nil {
				return 0, err
			}
			return len(b), nil
		}
	}
	return c.Conn.Write(b)
}
