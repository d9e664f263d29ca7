package workers

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// TestReadinessWaitsForTheListenSignal: with a listen signal the first
// health probe comes after it; a signal that fails (unknown) or is absent
// leaves the backoff schedule in charge, which still finds the agent.
func TestReadinessWaitsForTheListenSignal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		signal    error // what await returns; nil with hasAwait
		hasAwait  bool
		failFirst int // probes refused before the agent answers
	}{
		{"signalled", nil, true, 0},
		{"signalled, first probe refused", nil, true, 1},
		{"signal unknown", errors.New("cannot watch"), true, 2},
		{"no signal", nil, false, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var signalled, probes atomic.Int32
			check := HealthCheckFunc(func(context.Context, http.RoundTripper, string) error {
				if tt.hasAwait && tt.signal == nil && signalled.Load() == 0 {
					t.Error("probed before the listen signal")
				}
				if int(probes.Add(1)) <= tt.failFirst {
					return errors.New("connection refused")
				}
				return nil
			})
			var await func(context.Context) error
			if tt.hasAwait {
				await = func(context.Context) error {
					signalled.Add(1)
					return tt.signal
				}
			}
			r := readiness{check: check, timeout: time.Minute, perTry: time.Second, minBackoff: time.Millisecond, maxBackoff: time.Millisecond}
			if err := r.wait(context.Background(), nil, "unix:///x/agent.sock", time.Now().Add(time.Minute), await); err != nil {
				t.Fatal(err)
			}
			if got := int(probes.Load()); got != tt.failFirst+1 {
				t.Errorf("%d probes, want %d", got, tt.failFirst+1)
			}
		})
	}
}
