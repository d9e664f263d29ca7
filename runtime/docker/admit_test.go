package docker

import (
	"context"
	"runtime"
	"sync"
	"testing"
)

// The gate admits at most n at once, in arrival order (one slot here, so
// admissions are sequential and their order observable), and a waiter
// that gives up leaves its place without taking a slot.
func TestAdmissionFIFOBounded(t *testing.T) {
	t.Parallel()
	a := &admission{n: 1}
	ctx := context.Background()
	r1, waited, err := a.acquire(ctx)
	if err != nil || waited {
		t.Fatalf("first acquire: waited %v, err %v", waited, err)
	}

	// A waiter whose context ends leaves the queue.
	gone, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := a.acquire(gone); err == nil {
		t.Fatal("acquire with a cancelled context succeeded while full")
	}

	const waiters = 5
	var (
		mu    sync.Mutex
		order []int
		wg    sync.WaitGroup
	)
	for i := range waiters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rel, waited, err := a.acquire(ctx)
			if err != nil || !waited {
				t.Errorf("queued acquire: waited %v, err %v", waited, err)
				return
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			rel()
		}()
		// Goroutine i queues before the next one starts (arrival order).
		for a.waiting() != i+1 {
			runtime.Gosched()
		}
	}
	if got := a.waiting(); got != waiters {
		t.Fatalf("waiting = %d, want %d", got, waiters)
	}
	r1()
	wg.Wait()
	for i, v := range order {
		if v != i {
			t.Fatalf("admitted in order %v, want arrival order", order)
		}
	}
	if a.running != 0 || a.waiting() != 0 {
		t.Fatalf("running %d, waiting %d after all released", a.running, a.waiting())
	}
}
