package handlers

import (
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/workspaced/workspaced/events"
)

// maxRequestIDLen bounds a client's X-Request-Id; the bus cuts correlation
// IDs to the same length.
const maxRequestIDLen = 128

// requestID is Echo's RequestID middleware: each request gets an ID, the
// client's X-Request-Id when it is usable (validRequestID), else a new one
// (Options.NewID), answered in the response's X-Request-Id. The ID is the
// request's correlation ID (events.WithCorrelationID on its context): the
// commands it publishes carry it, and the workspace.requested it publishes
// uses it as request_id, which the binding keeps for the task-state event
// that answers it (docs/bus.md, "Correlation IDs").
func (s *Server) requestID() echo.MiddlewareFunc {
	assign := middleware.RequestIDWithConfig(middleware.RequestIDConfig{
		Generator: s.opts.NewID,
		RequestIDHandler: func(c echo.Context, id string) {
			r := c.Request()
			c.SetRequest(r.WithContext(events.WithCorrelationID(r.Context(), id)))
		},
	})
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		h := assign(next)
		return func(c echo.Context) error {
			if id := c.Request().Header.Get(echo.HeaderXRequestID); id != "" && !validRequestID(id) {
				c.Request().Header.Del(echo.HeaderXRequestID)
			}
			return h(c)
		}
	}
}

// validRequestID accepts 1–128 printable ASCII characters without spaces:
// safe in logs, Redis and an SQS message attribute as they are.
func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}
