package handlers

import (
	"bytes"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer safe for the heartbeat's writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type countGauge struct{ n atomic.Int64 }

func (g *countGauge) Dec() { g.n.Add(-1) }

// Heartbeats repeat, call the hook, and stop at close: a heartbeat due
// after close writes nothing.
func TestStreamHeartbeats(t *testing.T) {
	t.Parallel()
	var out lockedBuffer
	var g countGauge
	st := startStream(&out, time.Millisecond, &g)
	beats := make(chan struct{}, 16)
	st.setBeat(func() {
		select {
		case beats <- struct{}{}:
		default:
		}
	})
	for range 3 {
		<-beats
	}
	st.close()
	written := out.String()
	if n := strings.Count(written, ": ping\n"); n < 3 {
		t.Errorf("%d pings written for 3 beats: %q", n, written)
	}
	st.heartbeat() // as a timer that fired at close would
	if out.String() != written {
		t.Errorf("a heartbeat after close wrote %q", strings.TrimPrefix(out.String(), written))
	}
	if g.n.Load() != -1 {
		t.Errorf("gauge moved by %d at close, want -1", g.n.Load())
	}
}
