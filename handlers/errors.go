package handlers

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// Error codes in JSON error bodies: {"error":{"code":"...","message":"..."}}.
const (
	codeBadRequest    = "bad_request"
	codeUnauthorized  = "unauthorized"
	codeNotFound      = "not_found"
	codeTooLarge      = "request_too_large"
	codeUnavailable   = "unavailable"
	codeInternal      = "internal"
	codeMethod        = "method_not_allowed"
	codeProvisioning  = "provisioning_failed"
	codeTimeout       = "provisioning_timeout"
	codeUpstream      = "workspace_unreachable"
	codeShuttingDown  = "shutting_down"
	codeNoWorkspace   = "workspace_lost"
	codeUnsupportedMT = "unsupported_media_type"
	codeBodyTimeout   = "request_timeout"
	codeTooManyConns  = "too_many_connections"
)

// retryAfter is the Retry-After (seconds) of every 503.
const retryAfter = "5"

// errorBody is the JSON body of every 4xx/5xx response, and the data of an
// SSE "error" event.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// apiError is an error with the status and code the client sees.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(msg string) error { return &apiError{http.StatusBadRequest, codeBadRequest, msg} }

var (
	errNotFound    = &apiError{http.StatusNotFound, codeNotFound, "conversation not found"}
	errTooLarge    = &apiError{http.StatusRequestEntityTooLarge, codeTooLarge, "request body too large"}
	errUnavailable = &apiError{http.StatusServiceUnavailable, codeUnavailable, "service unavailable"}
	errStoreDown   = &apiError{http.StatusServiceUnavailable, codeUnavailable, "state store unavailable; retry later"}
	errBodyTimeout = &apiError{http.StatusRequestTimeout, codeBodyTimeout, "request body not received in time"}
	errDraining    = &apiError{http.StatusServiceUnavailable, codeShuttingDown, "server shutting down; retry on another replica"}
)

// errorHandler is the one place errors become HTTP statuses. Only real
// server faults become 5xx; their details are logged, not returned.
func errorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		status, body := classify(err)
		switch {
		case status == http.StatusServiceUnavailable:
			log.Warn("request refused: unavailable", "method", c.Request().Method, "path", c.Path(), "err", err)
			c.Response().Header().Set("Retry-After", retryAfter)
		case status >= 500:
			log.Error("request failed", "method", c.Request().Method, "path", c.Path(), "err", err)
		}
		if unreadBody(c) || status == http.StatusRequestTimeout {
			// Answer now and close, instead of net/http reading the
			// rest of a body nobody wants (or that never comes): it
			// would, up to 256 KiB, before closing or reusing the
			// connection. A read deadline in the past ends that read.
			c.Response().Header().Set(echo.HeaderConnection, "close")
			defer func() { _ = http.NewResponseController(c.Response().Writer).SetReadDeadline(time.Now()) }()
		}
		if c.Request().Method == http.MethodHead {
			_ = c.NoContent(status)
			return
		}
		_ = c.JSON(status, body)
	}
}

func classify(err error) (int, errorBody) {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.status, errorBody{errorDetail{ae.code, ae.msg}}
	}
	var ne net.Error
	if errors.As(err, &ne) {
		// The API's own dependencies are reached over the network (Redis):
		// unreachable or timing out is "try again", not a fault of ours.
		return classify(errStoreDown)
	}
	if errors.Is(err, errUnauthorized) {
		return http.StatusUnauthorized, errorBody{errorDetail{codeUnauthorized, err.Error()}}
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		code := codeBadRequest
		switch he.Code {
		case http.StatusNotFound:
			code = codeNotFound
		case http.StatusMethodNotAllowed:
			code = codeMethod
		case http.StatusRequestEntityTooLarge:
			code = codeTooLarge
		case http.StatusUnsupportedMediaType:
			code = codeUnsupportedMT
		case http.StatusUnauthorized:
			code = codeUnauthorized
		}
		if he.Code >= 500 {
			code = codeInternal
		}
		msg := http.StatusText(he.Code)
		if m, ok := he.Message.(string); ok && he.Code < 500 {
			msg = m
		}
		return he.Code, errorBody{errorDetail{code, msg}}
	}
	return http.StatusInternalServerError, errorBody{errorDetail{codeInternal, "internal error"}}
}
