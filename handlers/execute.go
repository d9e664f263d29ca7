package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/workspaced/workspaced/agent/api"
	"github.com/workspaced/workspaced/events"
	"github.com/workspaced/workspaced/store"
)

// claim claims conversation cid for p: another key's conversation is not
// found (its existence is not disclosed).
func (s *Server) claim(ctx context.Context, cid string, p Principal) (store.Conversation, error) {
	conv, err := s.opts.Store.ClaimConversation(ctx, cid, p.Owner, p.Tenant)
	if errors.Is(err, store.ErrNotOwner) {
		return conv, errNotFound
	}
	if err != nil {
		return conv, fmt.Errorf("claim conversation: %w", err)
	}
	return conv, nil
}

// execute handles POST /v1/conversations/{id}/execute: validate, claim the
// conversation, then stream. Everything that can be refused is refused
// before the first byte of the stream; afterwards failures are SSE events.
func (s *Server) execute(c echo.Context) error {
	ctx := c.Request().Context()
	cid, err := conversationID(c)
	if err != nil {
		return err
	}
	req, err := s.decodeExecute(c)
	if err != nil {
		return err
	}
	var mcp *mcpConfig
	if len(req.MCPConfig) > 0 && string(req.MCPConfig) != "null" {
		m, err := rewriteMCP(req.MCPConfig, s.opts.MCPGateway)
		if err != nil {
			return err
		}
		req.MCPConfig, mcp = m.config, &m
	}
	p := principal(c)
	conv, err := s.claim(ctx, cid, p)
	if err != nil {
		return err
	}
	if mcp != nil {
		// Before any workspace is requested: personalisation reads them.
		if err := s.storeMCPRules(ctx, cid, mcp.rules); err != nil {
			return fmt.Errorf("store mcp rules: %w", err)
		}
	}

	st := s.openStream(c)
	defer st.close()
	outcome := s.serveStream(ctx, st, conv, req)
	s.metrics.outcomes.WithLabelValues(outcome).Inc()
	return nil
}

// conversationID returns the validated {id} path parameter.
func conversationID(c echo.Context) (string, error) {
	cid := c.Param("id")
	if !events.ValidConversationID(cid) {
		return "", badRequest("conversation id must match ^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
	}
	return cid, nil
}

// decodeExecute reads and validates the body: at most MaxBodyBytes, one
// JSON object, the agent's request fields, prompt or argv present.
func (s *Server) decodeExecute(c echo.Context) (api.ExecuteRequest, error) {
	var req api.ExecuteRequest
	r := c.Request()
	if r.ContentLength > s.opts.MaxBodyBytes {
		return req, errTooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), r.Body, s.opts.MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return req, errTooLarge
	}
	if err != nil {
		return req, badRequest("read body: " + err.Error())
	}
	dec := json.NewDecoder(bytesReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, badRequest("body must be a JSON object with the execute fields: " + err.Error())
	}
	if dec.More() {
		return req, badRequest("body has data after the JSON object")
	}
	if err := req.Validate(); err != nil {
		return req, badRequest(err.Error())
	}
	return req, nil
}

// serveStream waits for a ready workspace, then relays the run. It returns
// the outcome label: "done" or the final error's code.
func (s *Server) serveStream(ctx context.Context, st *stream, conv store.Conversation, req api.ExecuteRequest) string {
	release, fail := s.waitTurn(ctx, st, conv.ID)
	if fail != nil {
		return st.fail(fail)
	}
	defer release()
	// Read the binding again: it may have changed while this request waited.
	if fresh, err := s.opts.Store.Conversation(ctx, conv.ID); err == nil {
		conv = fresh
	}
	conv, fail = s.awaitReady(ctx, st, conv)
	if fail != nil {
		return st.fail(fail)
	}
	if fail := s.syncRules(ctx, conv); fail != nil {
		return st.fail(fail)
	}
	if fail := s.relay(ctx, st, conv, req); fail != nil {
		return st.fail(fail)
	}
	return "done"
}

// waitTurn queues the request behind other executes of the same
// conversation on this replica; a "status" event (state "waiting") tells
// the client when it has to wait.
func (s *Server) waitTurn(ctx context.Context, st *stream, cid string) (func(), *streamError) {
	ctx, cancel := s.withAbort(ctx)
	defer cancel(nil)
	release, err := s.runs.acquire(ctx, cid, func() {
		_ = st.sendJSON("status", statusEvent{State: "waiting"})
	})
	if err != nil {
		return nil, s.ended(ctx, err)
	}
	return release, nil
}
