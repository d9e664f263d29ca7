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

// executeBody is the JSON body of POST /v1/conversations/{id}/execute:
// the agent's request fields, and what a client disconnect does.
type executeBody struct {
	api.ExecuteRequest
	// OnDisconnect "cancel" ends the run when its client goes away; empty
	// (the default) leaves it running for RUN_DETACHED_TTL, waiting for a
	// follower.
	OnDisconnect string `json:"on_disconnect,omitempty"`
}

// execute handles POST /v1/conversations/{id}/execute: validate, claim the
// conversation, create the run, then stream it. Everything that can be
// refused is refused before the first byte of the stream; afterwards
// failures are SSE events. The run is driven apart from the request: the
// client going away detaches it (see docs/runs.md).
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
	if mcp != nil {
		// Before any workspace is requested: personalisation reads them.
		// Only after the claim: another owner's conversation keeps its rules.
		if _, err := s.claim(ctx, cid, p); err != nil {
			return err
		}
		if err := s.storeMCPRules(ctx, cid, mcp.rules); err != nil {
			return fmt.Errorf("store mcp rules: %w", err)
		}
	}
	d, conv, err := s.beginRun(ctx, cid, p, req.OnDisconnect)
	if err != nil {
		return err
	}
	c.Response().Header().Set(RunIDHeader, d.run.ID)
	st := s.openStream(c)
	s.serveAttached(ctx, d, st, conv, req.ExecuteRequest)
	st.close()
	return nil
}

// createRun records a new run of conv and registers its driver.
func (s *Server) createRun(ctx context.Context, conv store.Conversation, onDisconnect string) (*runDriver, error) {
	if s.isDraining() {
		return nil, errUnavailable
	}
	r := store.Run{ID: s.opts.NewID(), Conversation: conv.ID, OnDisconnect: onDisconnect}
	// The driver is registered before the run is recorded: from then on
	// this replica's adopt (a follower, the sweep) sees the run as its own.
	// Registered after, an adopt in between would take the lease this
	// replica already holds (same owner), fail the run as lost, and leave
	// this request a duplicate driver.
	d, ok := s.newDriver(ctx, r, 0)
	if !ok {
		return nil, errUnavailable
	}
	if err := s.opts.Store.CreateRun(ctx, r); err != nil {
		d.discard()
		return nil, fmt.Errorf("create run: %w", err)
	}
	if _, err := s.opts.Store.AcquireLease(ctx, runLeaseName(r.ID), s.replica, s.opts.RunLeaseTTL); err != nil {
		d.discard()
		return nil, fmt.Errorf("take run lease: %w", err)
	}
	return d, nil
}

// beginRun claims conversation cid for p, records a new run of it with
// its relay lease and registers its driver: one round trip (store.BeginRun,
// D36). On a conversation ready on its workspace the run is recorded
// started there with its first event (id 1, "run") logged; serveRequest
// then gives the agent the run without another round trip unless it had
// to wait or found another binding (nor syncs the MCP rules if the
// workspace's proxy holds them already).
func (s *Server) beginRun(ctx context.Context, cid string, p Principal, onDisconnect string) (*runDriver, store.Conversation, error) {
	if s.isDraining() {
		return nil, store.Conversation{}, errUnavailable
	}
	r := store.Run{ID: s.opts.NewID(), Conversation: cid, OnDisconnect: onDisconnect}
	first, err := json.Marshal(runEventData{RunID: r.ID, ConversationID: cid})
	if err != nil {
		return nil, store.Conversation{}, err
	}
	// Registered before the run is recorded, as in createRun: this
	// replica's adopt then sees the run as its own.
	d, ok := s.newDriver(ctx, r, 0)
	if !ok {
		return nil, store.Conversation{}, errUnavailable
	}
	b, err := s.opts.Store.BeginRun(ctx, store.RunBegin{
		Run: r, Owner: p.Owner, Tenant: p.Tenant, Lease: runLeaseName(r.ID), Holder: s.replica,
		LeaseTTL: s.opts.RunLeaseTTL, First: store.RunEvent{ID: 1, Event: eventRun, Data: string(first)},
		MaxEvents: s.opts.RunLogMaxEvents,
	})
	if err != nil {
		d.discard()
		if errors.Is(err, store.ErrNotOwner) {
			return nil, b.Conversation, errNotFound
		}
		return nil, b.Conversation, fmt.Errorf("begin run: %w", err)
	}
	if b.Started {
		d.hot = &b
		d.logged = 1
	}
	return d, b.Conversation, nil
}

// serveAttached drives run d with st attached until its final event, a
// handoff, or the client going away (which cancels the run only with
// on_disconnect "cancel").
func (s *Server) serveAttached(ctx context.Context, d *runDriver, st *stream, conv store.Conversation, req api.ExecuteRequest) {
	d.attach(st)
	_ = d.sendJSON(eventRun, runEventData{RunID: d.run.ID, ConversationID: conv.ID})
	d.goRun(func(ctx context.Context) { d.serveRequest(ctx, conv, req) })
	select {
	case <-d.sinkEnd:
	case <-ctx.Done():
		d.detach()
		if d.run.OnDisconnect == onDisconnectCancel {
			d.cancelRun("client gone (on_disconnect cancel)")
		}
	}
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
func (s *Server) decodeExecute(c echo.Context) (executeBody, error) {
	var req executeBody
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
	if req.OnDisconnect != "" && req.OnDisconnect != onDisconnectCancel {
		return req, badRequest(`on_disconnect must be "cancel" or absent`)
	}
	return req, nil
}

// waitTurn queues the request behind other executes of the same
// conversation on this replica; a "status" event (state "waiting") tells
// the client when it has to wait.
func (s *Server) waitTurn(ctx context.Context, st eventSink, cid string) (func(), *streamError) {
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
