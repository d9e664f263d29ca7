package handlers

import (
	"context"
	"net/http"
	"sort"

	"github.com/labstack/echo/v4"
)

// live answers while the process serves HTTP at all.
func (s *Server) live(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// ready answers 200 when every dependency check passes and the server is
// not draining; 503 with the failing checks otherwise.
func (s *Server) ready(c echo.Context) error {
	result := map[string]string{}
	ok := true
	if s.isDraining() {
		result["server"] = "draining"
		ok = false
	}
	names := make([]string, 0, len(s.opts.Checks))
	for name := range s.opts.Checks {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		ctx, cancel := context.WithTimeout(c.Request().Context(), s.opts.CheckTimeout)
		err := s.opts.Checks[name](ctx)
		cancel()
		if err != nil {
			result[name] = err.Error()
			ok = false
			continue
		}
		result[name] = "ok"
	}
	status := http.StatusOK
	if !ok {
		status = http.StatusServiceUnavailable
	}
	return c.JSON(status, map[string]any{"ready": ok, "checks": result})
}
