package sse_test

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/workspaced/workspaced/sse"
)

// agentStream is what the agent sends for `seq 1 n`: one stdout event per
// line, numbered from 1, then done.
func agentStream(n int) []byte {
	var b bytes.Buffer
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "id: %d\nevent: stdout\ndata: %d\n\n", i, i)
	}
	fmt.Fprintf(&b, "id: %d\nevent: done\ndata: {\"exit_code\":0}\n\n", n+1)
	return b.Bytes()
}

// BenchmarkRelayEvents reads the agent's stream of `seq 1 5000` and writes
// every event again (the relay's per-event work in this package), into a
// discarding writer. It reports the cost per event.
func BenchmarkRelayEvents(b *testing.B) {
	const n = 5000
	in := agentStream(n)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for range b.N {
		r := sse.NewReader(bytes.NewReader(in))
		w := sse.NewWriter(io.Discard)
		for {
			ev, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if err := w.BufferEvent(ev); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*(n+1)), "ns/event")
}
