package bus

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/workspaced/workspaced/events"
	"github.com/workspaced/workspaced/workspace"
)

// maxReasonLen bounds the reason_poisoned metadata: a recovered panic's
// error carries a stack trace, and SQS counts attributes against the
// 256 KiB message limit.
const maxReasonLen = 1024

// chain holds the Router's middleware; see the package doc for the order.
type chain struct {
	bus     *Bus
	pub     message.Publisher
	retry   RetryOptions // defaults applied
	metrics *Metrics
	logger  *slog.Logger
	// onGiveUp is RouterOptions.OnGiveUp.
	onGiveUp func(*message.Message, error)
}

// poison is the outermost middleware: when the chain gives up it publishes
// the message to the bus's poison destination and acks it. If the message's
// delivery was cancelled (the subscription is ending) the error is returned
// instead: the message is nacked and redelivered later, never poisoned for
// a shutdown.
func (c *chain) poison(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		delivery := msg.Context()
		topic := message.SubscribeTopicFromCtx(delivery)
		produced, err := h(msg)
		msg.SetContext(delivery)
		if err == nil {
			c.metrics.observeHandled(topic, OutcomeOK)
			return produced, nil
		}
		log := c.logger.With("topic", topic, "message_uuid", msg.UUID, "correlation_id", CorrelationID(msg))
		if delivery.Err() != nil {
			c.metrics.observeHandled(topic, OutcomeAbandoned)
			log.Info("handler abandoned, message will be redelivered", "err", err)
			return nil, err
		}
		cause := CauseExhausted
		if workspace.IsTerminal(err) {
			cause = CausePermanent
		}
		if c.onGiveUp != nil {
			c.onGiveUp(msg, err)
		}
		dest := c.bus.PoisonTopic(topic)
		if perr := c.pub.Publish(dest, poisonCopy(msg, err, topic, message.HandlerNameFromCtx(delivery))); perr != nil {
			c.metrics.observeHandled(topic, OutcomeNacked)
			log.Error("cannot publish to poison destination, nacking", "poison_topic", dest, "err", err, "publish_error", perr)
			return nil, errors.Join(err, perr)
		}
		c.metrics.observeHandled(topic, OutcomePoisoned)
		c.metrics.observePoisoned(topic, cause)
		log.Warn("message poisoned", "poison_topic", dest, "cause", cause, "err", err)
		return nil, nil
	}
}

// poisonCopy is msg with its metadata and why it was poisoned (Watermill's
// PoisonQueue keys). Empty values are left out: SQS rejects empty message
// attributes.
func poisonCopy(msg *message.Message, err error, topic, handler string) *message.Message {
	p := message.NewMessage(msg.UUID, msg.Payload)
	for k, v := range msg.Metadata {
		if v != "" {
			p.Metadata.Set(k, v)
		}
	}
	for k, v := range map[string]string{
		middleware.ReasonForPoisonedKey: sqsSafe(err.Error(), maxReasonLen),
		middleware.PoisonedTopicKey:     topic,
		middleware.PoisonedHandlerKey:   handler,
	} {
		if v != "" {
			p.Metadata.Set(k, v)
		}
	}
	return p
}

// sqsSafe returns s truncated to at most n bytes of valid UTF-8, with
// characters SQS refuses in attribute values replaced by '?'.
func sqsSafe(s string, n int) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) > n {
		s = s[:n]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
		case r < 0x20, r >= 0xD800 && r <= 0xDFFF, r == 0xFFFE, r == 0xFFFF:
			return '?'
		}
		return r
	}, s)
}

// truncate returns err's text cut to n bytes, for logs repeated per retry
// (a recovered panic's error carries a whole stack trace).
func truncate(err error, n int) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// correlation makes sure msg has a correlation_id (a raw EventBridge
// envelope has none: its UUID, the SQS MessageId, is used), puts it in the
// message context (events.WithCorrelationID) for Commands and the
// handler's logs, and copies it to produced
// messages, like Watermill's CorrelationID middleware.
func (c *chain) correlation(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		id := CorrelationID(msg)
		if id == "" && msg.UUID != "" {
			id = msg.UUID
			middleware.SetCorrelationID(id, msg)
		}
		msg.SetContext(events.WithCorrelationID(msg.Context(), id))
		produced, err := h(msg)
		for _, p := range produced {
			middleware.SetCorrelationID(id, p)
		}
		return produced, err
	}
}

// budget puts one deadline on all attempts and waits of a message.
func (c *chain) budget(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		ctx, cancel := context.WithTimeout(msg.Context(), c.retry.Budget())
		defer cancel()
		msg.SetContext(ctx)
		return h(msg)
	}
}

// retrying is Watermill's Retry middleware with exponential backoff that
// stops at once on a terminal error (workspace.IsTerminal), plus a per-attempt timeout, retry
// logging and the retries metric.
func (c *chain) retrying(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		topic := message.SubscribeTopicFromCtx(msg.Context())
		attempt := 0
		var lastErr error
		attemptFn := func(msg *message.Message) ([]*message.Message, error) {
			attempt++
			if attempt > 1 {
				c.metrics.observeRetry(topic)
				c.logger.Warn("retrying message", "topic", topic, "message_uuid", msg.UUID,
					"correlation_id", CorrelationID(msg), "attempt", attempt, "error", truncate(lastErr, 512))
			}
			ctx, cancel := context.WithTimeout(msg.Context(), c.retry.AttemptTimeout)
			defer cancel()
			msg.SetContext(ctx)
			produced, err := h(msg)
			lastErr = err
			return produced, err
		}
		r := middleware.Retry{
			MaxRetries:          c.retry.retries(),
			InitialInterval:     c.retry.InitialInterval,
			MaxInterval:         c.retry.MaxInterval,
			Multiplier:          c.retry.Multiplier,
			RandomizationFactor: c.retry.jitter(),
			ShouldRetry:         func(p middleware.RetryParams) bool { return !workspace.IsTerminal(p.Err) },
			// Each attempt gets a fresh deadline derived from the budget,
			// not from the previous attempt's cancelled context.
			ResetContextOnRetry: true,
		}
		return r.Middleware(attemptFn)(msg)
	}
}
