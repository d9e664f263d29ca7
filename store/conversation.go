package store

import (
	"context"
	"fmt"
	"time"
)

// ClaimConversation creates conversation cid owned by owner, or checks that
// owner already owns it: the first owner to use a conversation keeps it.
// Another owner gets ErrNotOwner. Atomic (one script).
func (v Conversations) ClaimConversation(ctx context.Context, cid, owner, tenant string) (Conversation, error) {
	if owner == "" {
		return Conversation{}, fmt.Errorf("claim conversation %s: empty owner", cid)
	}
	r, err := v.c.runStrings(ctx, scriptClaim, []string{v.c.k.conv(cid)}, cid, owner, tenant)
	if err != nil {
		return Conversation{}, fmt.Errorf("claim conversation %s: %w", cid, err)
	}
	if r[0] == "not_owner" {
		return Conversation{}, fmt.Errorf("claim conversation %s: %w", cid, ErrNotOwner)
	}
	return conversationJSON(cid, r[1])
}

// Conversation returns cid's record, or ErrNotFound if it was never used.
func (v Conversations) Conversation(ctx context.Context, cid string) (Conversation, error) {
	m, err := v.c.rdb.HGetAll(ctx, v.c.k.conv(cid)).Result()
	if err != nil {
		return Conversation{}, fmt.Errorf("read conversation %s: %w", cid, err)
	}
	if len(m) == 0 {
		return Conversation{}, fmt.Errorf("read conversation %s: %w", cid, ErrNotFound)
	}
	return parseConversation(cid, m), nil
}

// ConversationOf returns cid's record if owner owns it: ErrNotFound if it
// was never used, ErrNotOwner if another owner does (the API answers both
// with 404). Read-only: unlike ClaimConversation it creates nothing.
func (v Conversations) ConversationOf(ctx context.Context, cid, owner string) (Conversation, error) {
	c, err := v.Conversation(ctx, cid)
	if err != nil {
		return Conversation{}, err
	}
	if c.Owner != owner {
		return Conversation{}, fmt.Errorf("read conversation %s: %w", cid, ErrNotOwner)
	}
	return c, nil
}

// MarkQueued records that a workspace was requested for cid (request
// requestID at requestedAt) and notifies watchers, unless the conversation
// is live (then it is returned unchanged) or already queued (the first
// request's time is kept).
func (v Conversations) MarkQueued(ctx context.Context, cid, requestID string, requestedAt time.Time) (Conversation, error) {
	r, err := v.c.runStrings(ctx, scriptQueued, []string{v.c.k.conv(cid)}, cid, requestID, ms(requestedAt))
	if err != nil {
		return Conversation{}, fmt.Errorf("mark conversation %s queued: %w", cid, err)
	}
	return conversationJSON(cid, r[1])
}

// MarkFailed marks cid failed with reason and notifies watchers, advancing
// its generation. It refuses with ErrConflict when the conversation is
// bound to a live workspace (another delivery succeeded; failing it would
// orphan that workspace). Marking a failed conversation failed again
// changes nothing.
func (v Conversations) MarkFailed(ctx context.Context, cid, reason string) (Conversation, error) {
	return v.settle(ctx, "mark conversation failed", cid, "", StateFailed, reason)
}

// FailWorkspace ends cid's binding to wid as failed (for example the agent
// never became healthy): compare-and-clear, generation++, notify. ErrConflict
// if cid is not bound to wid.
func (v Conversations) FailWorkspace(ctx context.Context, cid, wid, reason string) (Conversation, error) {
	if wid == "" {
		return Conversation{}, fmt.Errorf("fail workspace of conversation %s: empty workspace id", cid)
	}
	return v.settle(ctx, "fail workspace", cid, wid, StateFailed, reason)
}

// Unbind ends cid's binding to wid as released: compare-and-clear (only if
// bound to wid), generation++, notify. ErrConflict if cid is not bound to
// wid (already unbound, or bound to a newer workspace).
func (v Conversations) Unbind(ctx context.Context, cid, wid string) (Conversation, error) {
	if wid == "" {
		return Conversation{}, fmt.Errorf("unbind conversation %s: empty workspace id", cid)
	}
	return v.settle(ctx, "unbind", cid, wid, StateReleased, "")
}

func (v Conversations) settle(ctx context.Context, what, cid, wid string, st ConversationState, reason string) (Conversation, error) {
	r, err := v.c.runStrings(ctx, scriptSettle, []string{v.c.k.conv(cid)}, cid, wid, string(st), reason)
	if err != nil {
		return Conversation{}, fmt.Errorf("%s %s: %w", what, cid, err)
	}
	c, err := conversationJSON(cid, r[1])
	if err != nil {
		return Conversation{}, err
	}
	if r[0] == "conflict" {
		return c, fmt.Errorf("%s %s (bound to %q, state %s): %w", what, cid, c.Workspace, c.State, ErrConflict)
	}
	return c, nil
}
