package store_test

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/workspaced/workspaced/internal/benchcmp"
	"github.com/workspaced/workspaced/internal/redistest"
	"github.com/workspaced/workspaced/internal/testenv"
	"github.com/workspaced/workspaced/store"
)

// benchClients is the concurrency of the task-state comparison: the
// state subscriber's consumers, and redis-benchmark's -c.
const benchClients = 8

var setRate = regexp.MustCompile(`SET: ([0-9.]+) requests per second`)

// BenchmarkCompare compares, on one redis-server and interleaved, the rate
// at which benchClients concurrent callers apply task-state events
// (ApplyTaskState: the apply script with its version compare-and-set,
// group-committed) with `redis-benchmark -t set -c 8`, the floor (make
// bench, scripts/bench.sh).
func BenchmarkCompare(b *testing.B) {
	bin := testenv.LookPath(b, "redis-benchmark")
	srv := redistest.Start(b)
	rdb := srv.Client(b)
	st := store.New(rdb, store.Options{Prefix: "bench:"})
	const perRound = 20000
	var version atomic.Int64
	floor := benchcmp.Side{Name: "redis-benchmark SET", Run: func(ctx context.Context) (benchcmp.Sample, error) {
		out, err := exec.CommandContext(ctx, bin, "-s", srv.Socket, "-t", "set", "-c", strconv.Itoa(benchClients),
			"-n", strconv.Itoa(perRound), "-q").CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("redis-benchmark: %w: %s", err, out)
		}
		m := setRate.FindSubmatch(out)
		if m == nil {
			return nil, fmt.Errorf("redis-benchmark: no SET rate in %q", out)
		}
		v, err := strconv.ParseFloat(string(m[1]), 64)
		return benchcmp.Sample{"rate": v}, err
	}}
	floor = withServerTime(rdb, floor, perRound, "set")
	apply := benchcmp.Side{Name: "ApplyTaskState", Run: func(ctx context.Context) (benchcmp.Sample, error) {
		var (
			wg   sync.WaitGroup
			errs = make(chan error, benchClients)
			next atomic.Int64
		)
		start := time.Now()
		for c := range benchClients {
			wg.Go(func() {
				for next.Add(1) <= perRound {
					ev := store.TaskState{Workspace: fmt.Sprintf("w%d", c), Status: "RUNNING", Version: version.Add(1)}
					if _, err := st.ApplyTaskState(ctx, ev); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			return nil, err
		}
		return benchcmp.Sample{"rate": perRound / time.Since(start).Seconds()}, nil
	}}
	apply = withServerTime(rdb, apply, perRound, "evalsha", "eval")
	b.Run("task-state", func(b *testing.B) { compareTaskState(b, floor, apply, perRound) })
}

// compareTaskState runs the task-state comparison (a sub-benchmark, so
// that BENCH_ONLY selects it, or not, by name).
func compareTaskState(b *testing.B, floor, apply benchcmp.Side, perRound int) {
	benchcmp.Bench(b, benchcmp.Comparison{
		Name: "task-state events applied to Redis", N: benchcmp.Rounds(10), Warmup: 1,
		A: floor, B: apply,
		Metrics: []benchcmp.Metric{
			{Name: "rate", Unit: "events/s", Kind: benchcmp.Ratio, Min: map[string]float64{"p50": 0.8}},
			{Name: "server", Unit: "µs of redis-server per event, INFO commandstats", Kind: benchcmp.Ratio},
		},
		Note: fmt.Sprintf("%d events per round from %d concurrent callers of `Events.ApplyTaskState` (each a new version of "+
			"one of %d workspaces: the compare-and-set applies), against `redis-benchmark -t set -c %d -n %d` on the same "+
			"redis-server (Unix socket); *server* is the time redis-server spent in the side's commands per event "+
			"(`INFO commandstats`: SET, against the apply scripts' EVALSHA) (`store/bench_test.go`).", perRound, benchClients, benchClients, benchClients, perRound),
	})
}

// withServerTime adds to side's samples the "server" metric: the
// microseconds redis-server spent per event in the named commands during
// the round (the usec of INFO commandstats, read before and after).
func withServerTime(rdb *redis.Client, side benchcmp.Side, events int, commands ...string) benchcmp.Side {
	run := side.Run
	side.Run = func(ctx context.Context) (benchcmp.Sample, error) {
		before, err := commandUsec(ctx, rdb, commands)
		if err != nil {
			return nil, err
		}
		s, err := run(ctx)
		if err != nil {
			return nil, err
		}
		after, err := commandUsec(ctx, rdb, commands)
		if err != nil {
			return nil, err
		}
		s["server"] = (after - before) / float64(events)
		return s, nil
	}
	return side
}

var cmdstatUsec = regexp.MustCompile(`(?m)^cmdstat_([a-z|]+):calls=\d+,usec=(\d+),`)

// commandUsec is the total usec INFO commandstats reports for commands.
func commandUsec(ctx context.Context, rdb *redis.Client, commands []string) (float64, error) {
	info, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return 0, fmt.Errorf("info commandstats: %w", err)
	}
	var total float64
	for _, m := range cmdstatUsec.FindAllStringSubmatch(info, -1) {
		if slices.Contains(commands, m[1]) {
			v, _ := strconv.ParseFloat(m[2], 64)
			total += v
		}
	}
	return total, nil
}
