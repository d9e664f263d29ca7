package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/workspaced/workspaced/events"
	"github.com/workspaced/workspaced/store"
)

// conversationView is the JSON of GET /v1/conversations/{id}.
type conversationView struct {
	ID          string    `json:"id"`
	State       string    `json:"state"`
	WorkspaceID string    `json:"workspace_id,omitempty"`
	Generation  int64     `json:"generation"`
	Error       string    `json:"error,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// owned returns the caller's conversation, or errNotFound for a
// conversation that does not exist or belongs to another key.
func (s *Server) owned(c echo.Context) (store.Conversation, error) {
	cid, err := conversationID(c)
	if err != nil {
		return store.Conversation{}, err
	}
	conv, err := s.opts.Store.Conversation(c.Request().Context(), cid)
	if errors.Is(err, store.ErrNotFound) {
		return conv, errNotFound
	}
	if err != nil {
		return conv, fmt.Errorf("read conversation: %w", err)
	}
	if conv.Owner != principal(c).Owner {
		return conv, errNotFound
	}
	return conv, nil
}

func (s *Server) getConversation(c echo.Context) error {
	conv, err := s.owned(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, conversationView{
		ID: conv.ID, State: string(conv.State), WorkspaceID: conv.Workspace, Generation: conv.Generation,
		Error: conv.Error, CreatedAt: conv.CreatedAt, UpdatedAt: conv.UpdatedAt,
	})
}

// deleteConversation publishes workspace.released for the conversation's
// current workspace and answers 202: the worker saves the files and stops
// it. Releasing a conversation without a workspace is a no-op (still 202).
func (s *Server) deleteConversation(c echo.Context) error {
	conv, err := s.owned(c)
	if err != nil {
		return err
	}
	cmd := events.WorkspaceReleased{ConversationID: conv.ID, WorkspaceID: conv.Workspace, Reason: events.ReasonClient, RequestedAt: s.opts.Now()}
	if err := s.opts.Commands.PublishReleased(c.Request().Context(), cmd); err != nil {
		return fmt.Errorf("publish release: %w", err)
	}
	return c.JSON(http.StatusAccepted, map[string]string{"id": conv.ID, "status": "releasing", "workspace_id": conv.Workspace})
}

// pool answers GET /v1/pool.
func (s *Server) pool(c echo.Context) error {
	if s.opts.Pool == nil {
		return c.JSON(http.StatusOK, map[string]any{"enabled": false, "available": 0})
	}
	inv, err := s.opts.Pool.Inventory(c.Request().Context())
	if err != nil {
		return fmt.Errorf("read pool inventory: %w", err)
	}
	return c.JSON(http.StatusOK, inv)
}
