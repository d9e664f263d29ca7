package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Watch follows one conversation's changes. Create it with
// Store.Watch; it holds a Redis pub/sub connection until Close. Not safe
// for concurrent use (one reader).
type Watch struct {
	v      Conversations
	cid    string
	ps     *redis.PubSub
	ch     <-chan any
	last   int64 // rev of the last state returned
	first  bool  // nothing returned yet
	reread bool  // (re)subscribed: read the state before anything else
}

// Watch subscribes to cid's changes. The first Next returns the state as of
// after the subscription was confirmed, so no change between subscribing
// and reading is missed; each later Next returns the next newer state.
func (v Conversations) Watch(ctx context.Context, cid string) (*Watch, error) {
	ps := v.c.rdb.Subscribe(ctx)
	if err := ps.Subscribe(ctx, v.c.k.channel(cid)); err != nil {
		_ = ps.Close()
		return nil, fmt.Errorf("watch conversation %s: %w", cid, err)
	}
	w := &Watch{v: v, cid: cid, ps: ps, first: true}
	// The channel forwards subscription confirmations too: one arrives
	// after every (re)connect, and the watch re-reads the state then,
	// covering messages published while disconnected.
	w.ch = ps.ChannelWithSubscriptions(redis.WithChannelSize(64))
	return w, nil
}

// Next blocks until the conversation's state is newer than the last one
// returned (the first call returns the current state) or ctx ends.
// States published in quick succession are returned one by one, in order;
// after a reconnect, states published while disconnected are coalesced
// into the current one. A conversation never used is returned as state
// none with Rev 0.
func (w *Watch) Next(ctx context.Context) (Conversation, error) {
	for {
		if w.reread {
			w.reread = false
			c, err := w.read(ctx)
			if err != nil {
				return Conversation{}, err
			}
			if w.first || c.Rev != w.last {
				return w.emit(c), nil
			}
		}
		select {
		case <-ctx.Done():
			return Conversation{}, fmt.Errorf("watch conversation %s: %w", w.cid, ctx.Err())
		case m, ok := <-w.ch:
			if !ok {
				return Conversation{}, fmt.Errorf("watch conversation %s: %w", w.cid, errWatchClosed)
			}
			switch m := m.(type) {
			case *redis.Subscription:
				if m.Kind == "subscribe" {
					w.reread = true
				}
			case *redis.Message:
				if w.first {
					continue // the read after the confirmation covers it
				}
				c, err := conversationJSON(w.cid, m.Payload)
				if err != nil {
					return Conversation{}, err
				}
				if c.Rev > w.last {
					return w.emit(c), nil
				}
			}
		}
	}
}

var errWatchClosed = errors.New("watch closed")

func (w *Watch) emit(c Conversation) Conversation {
	w.first = false
	w.last = c.Rev
	return c
}

func (w *Watch) read(ctx context.Context) (Conversation, error) {
	c, err := w.v.Conversation(ctx, w.cid)
	if errors.Is(err, ErrNotFound) {
		return Conversation{ID: w.cid, State: StateNone}, nil
	}
	return c, err
}

// Close unsubscribes and releases the connection. Safe to call twice.
func (w *Watch) Close() error {
	if err := w.ps.Close(); err != nil && !errors.Is(err, redis.ErrClosed) {
		return fmt.Errorf("close watch of conversation %s: %w", w.cid, err)
	}
	return nil
}

// WaitConversation blocks until cond holds for cid's state and returns that
// state, or returns ctx's error. It reads the state once after subscribing
// and again only when notified: no polling.
func (v Conversations) WaitConversation(ctx context.Context, cid string, cond func(Conversation) bool) (Conversation, error) {
	w, err := v.Watch(ctx, cid)
	if err != nil {
		return Conversation{}, err
	}
	defer w.Close()
	for {
		c, err := w.Next(ctx)
		if err != nil {
			return Conversation{}, err
		}
		if cond(c) {
			return c, nil
		}
	}
}
