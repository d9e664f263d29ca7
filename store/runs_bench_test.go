package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/workspaced/workspaced/internal/redistest"
	"github.com/workspaced/workspaced/store"
)

// BenchmarkAppendRunEvents appends a run of 5000 short stdout events (the
// relay benchmark's `seq 1 5000`) in the relay's batches of 200, and reads
// it back whole, on a real redis-server. It reports the cost per event and
// the log's Redis memory per event (MEMORY USAGE).
func BenchmarkAppendRunEvents(b *testing.B) {
	const events, batch = 5000, 200
	srv := redistest.Start(b)
	rdb := srv.Client(b)
	s := store.New(rdb, store.Options{Prefix: "b:"})
	ctx := context.Background()
	evs := make([]store.RunEvent, events)
	for i := range evs {
		evs[i] = store.RunEvent{ID: int64(i + 1), Event: "stdout", Data: fmt.Sprint(i + 1)}
	}
	for _, tt := range []struct {
		name string
		read bool
	}{{"append", false}, {"append+read", true}} {
		b.Run(tt.name, func(b *testing.B) {
			var mem int64
			for i := range b.N {
				rid := fmt.Sprintf("%s-%d", tt.name, i)
				for j := 0; j < events; j += batch {
					if err := s.AppendRunEvents(ctx, rid, evs[j:j+batch], 10000); err != nil {
						b.Fatal(err)
					}
				}
				for after := int64(0); tt.read && after < events; {
					got, err := s.RunEvents(ctx, rid, after, 512)
					if err != nil || len(got) == 0 {
						b.Fatalf("read after %d: %d events, %v", after, len(got), err)
					}
					after = got[len(got)-1].ID
				}
				if i == 0 {
					b.StopTimer()
					m, err := rdb.MemoryUsage(ctx, "b:run:"+rid+":log", 0).Result()
					if err != nil {
						b.Fatal(err)
					}
					mem = m
					b.StartTimer()
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*events), "ns/event")
			b.ReportMetric(float64(mem)/events, "redis-B/event")
		})
	}
}
