package bus

import (
	"errors"
	"fmt"
	"time"
)

// Retry defaults applied by NewRouter to zero-valued fields.
const (
	DefaultMaxRetries          = 3
	DefaultInitialInterval     = 250 * time.Millisecond
	DefaultMaxInterval         = 5 * time.Second
	DefaultMultiplier          = 2.0
	DefaultRandomizationFactor = 0.2
	DefaultAttemptTimeout      = 10 * time.Second
)

// RetryOptions configures the Router's exponential backoff.
type RetryOptions struct {
	// MaxRetries is the number of attempts after the first. 0 means
	// DefaultMaxRetries; a negative value means no retries.
	MaxRetries int
	// InitialInterval is the first wait; each next one is Multiplier times
	// longer, up to MaxInterval, each randomised by ±RandomizationFactor.
	InitialInterval time.Duration
	MaxInterval     time.Duration
	Multiplier      float64
	// RandomizationFactor in [0,1). 0 means the default; negative means
	// none.
	RandomizationFactor float64
	// AttemptTimeout bounds one handler call (its message context's
	// deadline). Handlers must honour their context.
	AttemptTimeout time.Duration
}

func (o RetryOptions) withDefaults() RetryOptions {
	if o.MaxRetries == 0 {
		o.MaxRetries = DefaultMaxRetries
	}
	if o.InitialInterval == 0 {
		o.InitialInterval = DefaultInitialInterval
	}
	if o.MaxInterval == 0 {
		o.MaxInterval = max(DefaultMaxInterval, o.InitialInterval)
	}
	if o.Multiplier == 0 {
		o.Multiplier = DefaultMultiplier
	}
	if o.RandomizationFactor == 0 {
		o.RandomizationFactor = DefaultRandomizationFactor
	}
	if o.AttemptTimeout == 0 {
		o.AttemptTimeout = DefaultAttemptTimeout
	}
	return o
}

// retries is the effective number of retries (withDefaults applied).
func (o RetryOptions) retries() int { return max(o.MaxRetries, 0) }

// jitter is the effective randomization factor (withDefaults applied).
func (o RetryOptions) jitter() float64 { return max(o.RandomizationFactor, 0) }

func (o RetryOptions) validate() error {
	var errs []error
	if o.InitialInterval <= 0 {
		errs = append(errs, fmt.Errorf("retry initial interval %v must be positive", o.InitialInterval))
	}
	if o.MaxInterval < o.InitialInterval {
		errs = append(errs, fmt.Errorf("retry max interval %v is below the initial interval %v", o.MaxInterval, o.InitialInterval))
	}
	if o.Multiplier < 1 {
		errs = append(errs, fmt.Errorf("retry multiplier %v is below 1", o.Multiplier))
	}
	if o.RandomizationFactor >= 1 {
		errs = append(errs, fmt.Errorf("retry randomization factor %v is not below 1", o.RandomizationFactor))
	}
	if o.AttemptTimeout <= 0 {
		errs = append(errs, fmt.Errorf("attempt timeout %v must be positive", o.AttemptTimeout))
	}
	return errors.Join(errs...)
}

// Budget is the longest one message can spend in the handler chain, once
// defaults are applied: every attempt hitting AttemptTimeout, every wait at
// MaxInterval stretched by the randomization factor. The Router enforces it
// as a deadline on the message context.
func (o RetryOptions) Budget() time.Duration {
	o = o.withDefaults()
	n := time.Duration(o.retries())
	wait := time.Duration(float64(o.MaxInterval)*(1+o.jitter())) + time.Millisecond
	return (n+1)*o.AttemptTimeout + n*wait
}

// checkVisibility refuses retry settings that could keep a message in a
// handler past the queue's visibility timeout: watermill-aws v1.0.2 has no
// visibility heartbeat, so SQS would deliver the message again while it is
// still being handled. Messages of one ReceiveMessage batch are handled one
// after another, so the batch shares the timeout.
func checkRetryBudget(o RetryOptions, s SQSOptions) error {
	o = o.withDefaults()
	total := time.Duration(s.MaxMessages) * o.Budget()
	if total < s.VisibilityTimeout {
		return nil
	}
	return fmt.Errorf("retry settings allow %v per message (%d attempts of up to %v, %d waits of up to %v) × %d messages per receive = %v, not below the queue visibility timeout %v: lower MaxRetries, MaxInterval, AttemptTimeout or MaxMessages, or raise the visibility timeout",
		o.Budget(), o.retries()+1, o.AttemptTimeout, o.retries(), o.MaxInterval, s.MaxMessages, total, s.VisibilityTimeout)
}
