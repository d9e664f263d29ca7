package handlers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/workspaced/workspaced/agent/api"
	"github.com/workspaced/workspaced/selftest"
	"github.com/workspaced/workspaced/sse"
)

// selfTestTimeoutS bounds the self-test run in the workspace (its fork
// bomb alone may take 30 s).
const selfTestTimeoutS = 120

// Error code of a self-test that produced no report.
const codeNoReport = "selftest_no_report"

// selfTestRequest is the optional JSON body of POST .../selftest.
type selfTestRequest struct {
	// AllowedHost is a host:port the proxy must tunnel to (the
	// network.proxy_allows check); empty leaves that check not applicable.
	AllowedHost string `json:"allowed_host,omitempty"`
	// ForkBomb false skips the fork bomb (on ECS it briefly uses the
	// nproc budget all workspaces of an instance share).
	ForkBomb *bool `json:"fork_bomb,omitempty"`
}

var hostPortRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,252}):[0-9]{1,5}$`)

// selfTest handles POST /v1/conversations/{id}/selftest: with the same
// authorisation and ownership as execute (and provisioning a workspace if
// the conversation has none), it runs workspace-selftest in the
// conversation's workspace and answers with its report: 200 when every
// check passed or does not apply, 500 (same body) when a check failed —
// the workspace is not isolated, a fault of the service. A self-test that
// could not run answers like execute's final errors, as a JSON error.
func (s *Server) selfTest(c echo.Context) error {
	ctx := c.Request().Context()
	cid, err := conversationID(c)
	if err != nil {
		return err
	}
	req, err := s.decodeSelfTest(c)
	if err != nil {
		return err
	}
	p := principal(c)
	conv, err := s.claim(ctx, cid, p)
	if err != nil {
		return err
	}
	argv := []string{selftest.Binary}
	if req.AllowedHost != "" {
		argv = append(argv, "-allowed-host", req.AllowedHost)
	}
	if req.ForkBomb != nil && !*req.ForkBomb {
		argv = append(argv, "-fork-bomb=false")
	}
	d, err := s.createRun(ctx, conv, onDisconnectCancel)
	if err != nil {
		return err
	}
	var events bytes.Buffer
	st := s.collectStream(&events)
	s.serveAttached(ctx, d, st, conv, api.ExecuteRequest{Kind: api.KindCommand, Argv: argv, TimeoutS: selfTestTimeoutS})
	st.close()
	return s.answerSelfTest(c, cid, events.Bytes())
}

func (s *Server) decodeSelfTest(c echo.Context) (selfTestRequest, error) {
	var req selfTestRequest
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, 4096))
	if err != nil {
		return req, badRequest("read body: " + err.Error())
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return req, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || dec.More() {
		return req, badRequest("body must be empty or a JSON object with allowed_host and fork_bomb")
	}
	if req.AllowedHost != "" && !hostPortRE.MatchString(req.AllowedHost) {
		return req, badRequest("allowed_host must be host:port")
	}
	return req, nil
}

// collectStream is a stream whose events go to w instead of the client:
// the self-test is a run like execute's (with on_disconnect "cancel").
func (s *Server) collectStream(w io.Writer) *stream {
	return s.newStream(w)
}

// answerSelfTest turns the collected events into the response.
func (s *Server) answerSelfTest(c echo.Context, cid string, events []byte) error {
	var stdout strings.Builder
	var done *api.Done
	r := sse.NewReader(bytes.NewReader(events))
	for {
		ev, err := r.Next()
		if err != nil {
			break
		}
		switch ev.Event {
		case api.EventStdout:
			stdout.WriteString(ev.Data + "\n")
		case api.EventStdoutPart:
			stdout.WriteString(ev.Data)
		case api.EventDone:
			done = &api.Done{}
			_ = json.Unmarshal([]byte(ev.Data), done)
		case "error":
			var body errorBody
			_ = json.Unmarshal([]byte(ev.Data), &body)
			return &apiError{selfTestStatus(body.Error.Code), body.Error.Code, body.Error.Message}
		}
	}
	rep, err := selftest.Parse([]byte(stdout.String()))
	if err != nil {
		msg := "the self-test printed no report"
		if done != nil {
			msg = fmt.Sprintf("%s (exit code %d%s)", msg, done.ExitCode, strings.TrimSuffix(": "+done.Error, ": "))
		}
		s.log.Warn("selftest gave no report", "conversation", cid, "err", err)
		return &apiError{http.StatusBadGateway, codeNoReport, msg}
	}
	if !rep.Passed {
		s.log.Warn("selftest failed", "conversation", cid, "runtime", rep.Runtime, "failed", rep.Failed())
		return c.JSON(http.StatusInternalServerError, rep)
	}
	return c.JSON(http.StatusOK, rep)
}

// selfTestStatus maps execute's final error codes to HTTP statuses.
func selfTestStatus(code string) int {
	switch code {
	case codeTimeout:
		return http.StatusGatewayTimeout
	case codeShuttingDown, codeUnavailable:
		return http.StatusServiceUnavailable
	case codeBusy:
		return http.StatusConflict
	case codeCancelled:
		return 499 // the client is gone; nobody reads this
	}
	return http.StatusBadGateway
}
