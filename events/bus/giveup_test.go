package bus

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/workspaced/workspaced/workspace"
)

// OnGiveUp sees exactly the messages the router gives up on, with their
// last error, and never one that succeeded after a retry.
func TestRouterOnGiveUp(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := New(ctx, Options{Kind: KindGoChannel, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	type gaveUp struct {
		uuid string
		err  error
	}
	gave := make(chan gaveUp, 4)
	r, err := NewRouter(b, RouterOptions{
		Retry:    RetryOptions{MaxRetries: 2, InitialInterval: time.Millisecond, MaxInterval: time.Millisecond},
		OnGiveUp: func(msg *message.Message, err error) { gave <- gaveUp{msg.UUID, err} },
	})
	if err != nil {
		t.Fatal(err)
	}
	errBroken := errors.New("always broken")
	var flaky atomic.Int32
	handled := make(chan string, 4)
	r.AddConsumerHandler("h", "t", func(msg *message.Message) error {
		switch msg.UUID {
		case "permanent":
			return workspace.Terminal(errBroken)
		case "exhausted":
			return errBroken
		case "flaky":
			if flaky.Add(1) == 1 {
				return errors.New("first attempt fails")
			}
		}
		handled <- msg.UUID
		return nil
	})
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	<-r.Running()
	for _, id := range []string{"flaky", "permanent", "exhausted", "ok"} {
		if err := b.Publisher().Publish("t", message.NewMessage(id, []byte("{}"))); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]error{}
	for len(got) < 2 {
		select {
		case g := <-gave:
			got[g.uuid] = g.err
		case <-ctx.Done():
			t.Fatalf("OnGiveUp calls: %v", got)
		}
	}
	for _, id := range []string{"permanent", "exhausted"} {
		if !errors.Is(got[id], errBroken) {
			t.Errorf("OnGiveUp(%s) error %v, want %v", id, got[id], errBroken)
		}
	}
	for range 2 {
		select {
		case id := <-handled:
			if id != "flaky" && id != "ok" {
				t.Errorf("handled %s", id)
			}
		case <-ctx.Done():
			t.Fatal("successful messages not handled")
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	select {
	case g := <-gave:
		t.Errorf("OnGiveUp called for %s, which succeeded", g.uuid)
	default:
	}
}
