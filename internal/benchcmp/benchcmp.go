// Package benchcmp runs side-by-side comparisons for `make bench`: two sides
// (A, the floor, and B, what we build) measured interleaved — A, B, A, B … —
// so that the noise of a shared machine hits both, then summarised as
// percentiles and a ratio or difference against a goal.
//
// A comparison is a Go benchmark that calls Bench; the result is appended as
// one JSON line to the file named by $BENCHCMP_OUT (scripts/bench.sh sets
// it) and rendered into BENCHMARKS.md by ./internal/benchcmp/benchreport.
// $BENCH_N overrides every comparison's number of rounds.
package benchcmp

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Sample is one measurement of one side: a value per metric name.
type Sample map[string]float64

// Side is one side of a comparison. Run makes one measurement.
type Side struct {
	Name string
	Run  func(ctx context.Context) (Sample, error)
}

// Kind says how the two sides of a metric are compared.
type Kind string

// Kinds of comparison.
const (
	// Ratio is B / A of a percentile.
	Ratio Kind = "ratio"
	// Difference is B − A of a percentile.
	Difference Kind = "difference"
)

// Metric is one measured quantity and its goal.
type Metric struct {
	Name string // key in Sample
	Unit string // for the table: "ms", "events/s" …
	Kind Kind
	// Goals bound B against A, checked on the percentile named by each
	// goal's key ("p50", "p99"); a nil map means no goal (informative).
	Max map[string]float64 // B/A ≤ or B−A ≤
	Min map[string]float64 // B/A ≥ or B−A ≥
}

// Comparison is one row group of the benchmark table.
type Comparison struct {
	Name string
	// N rounds of A then B, after Warmup unmeasured rounds.
	N, Warmup int
	A, B      Side
	Metrics   []Metric
	// Note is printed under the table (what exactly is measured).
	Note string
}

// Stats are percentiles of one side's samples of one metric.
type Stats struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
}

// Get returns the percentile named p ("p50", "p90", "p99").
func (s Stats) Get(p string) float64 {
	switch p {
	case "p90":
		return s.P90
	case "p99":
		return s.P99
	}
	return s.P50
}

// Check is one goal's verdict.
type Check struct {
	Percentile string  `json:"percentile"`
	Value      float64 `json:"value"` // the ratio or difference
	Bound      float64 `json:"bound"`
	Max        bool    `json:"max"` // Value ≤ Bound (else ≥)
	Met        bool    `json:"met"`
}

// MetricResult is one metric of a finished comparison.
type MetricResult struct {
	Name   string  `json:"name"`
	Unit   string  `json:"unit"`
	Kind   Kind    `json:"kind"`
	A      Stats   `json:"a"`
	B      Stats   `json:"b"`
	Checks []Check `json:"checks,omitempty"`
}

// Result is a finished comparison.
type Result struct {
	Name    string         `json:"name"`
	N       int            `json:"n"`
	A       string         `json:"a"`
	B       string         `json:"b"`
	Metrics []MetricResult `json:"metrics"`
	Note    string         `json:"note,omitempty"`
	Machine string         `json:"machine"`
	When    time.Time      `json:"when"`
}

// Run measures c: Warmup rounds, then N rounds of A and B, interleaved.
func Run(ctx context.Context, c Comparison) (Result, error) {
	if c.N <= 0 {
		return Result{}, fmt.Errorf("comparison %s: N must be positive", c.Name)
	}
	for i := 0; i < c.Warmup; i++ {
		for _, s := range []Side{c.A, c.B} {
			if _, err := s.Run(ctx); err != nil {
				return Result{}, fmt.Errorf("%s: warm-up of %s: %w", c.Name, s.Name, err)
			}
		}
	}
	as := make([]Sample, 0, c.N)
	bs := make([]Sample, 0, c.N)
	for i := 0; i < c.N; i++ {
		a, err := c.A.Run(ctx)
		if err != nil {
			return Result{}, fmt.Errorf("%s: %s round %d: %w", c.Name, c.A.Name, i, err)
		}
		b, err := c.B.Run(ctx)
		if err != nil {
			return Result{}, fmt.Errorf("%s: %s round %d: %w", c.Name, c.B.Name, i, err)
		}
		as, bs = append(as, a), append(bs, b)
	}
	return Summarise(c, as, bs), nil
}

// Summarise turns the samples of both sides into a Result.
func Summarise(c Comparison, as, bs []Sample) Result {
	r := Result{Name: c.Name, N: len(as), A: c.A.Name, B: c.B.Name, Note: c.Note, Machine: Machine(), When: time.Now().UTC()}
	for _, m := range c.Metrics {
		mr := MetricResult{Name: m.Name, Unit: m.Unit, Kind: m.Kind, A: stats(as, m.Name), B: stats(bs, m.Name)}
		for _, p := range []string{"p50", "p90", "p99"} {
			v := compare(m.Kind, mr.A.Get(p), mr.B.Get(p))
			if bound, ok := m.Max[p]; ok {
				mr.Checks = append(mr.Checks, Check{Percentile: p, Value: v, Bound: bound, Max: true, Met: v <= bound})
			}
			if bound, ok := m.Min[p]; ok {
				mr.Checks = append(mr.Checks, Check{Percentile: p, Value: v, Bound: bound, Met: v >= bound})
			}
		}
		r.Metrics = append(r.Metrics, mr)
	}
	return r
}

func compare(k Kind, a, b float64) float64 {
	if k == Difference {
		return b - a
	}
	if a == 0 {
		return math.Inf(1)
	}
	return b / a
}

func stats(ss []Sample, name string) Stats {
	xs := make([]float64, 0, len(ss))
	for _, s := range ss {
		if v, ok := s[name]; ok {
			xs = append(xs, v)
		}
	}
	return Stats{P50: Percentile(xs, 50), P90: Percentile(xs, 90), P99: Percentile(xs, 99)}
}

// Percentile returns the p-th percentile of xs (nearest rank), NaN for none.
// xs is not modified.
func Percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[min(max(rank, 1), len(s))-1]
}

// Machine describes this machine for the table.
func Machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%d CPUs, %s; %s %s/%s", runtime.NumCPU(), cpu, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// Rounds returns $BENCH_N if set (a positive integer), else def.
func Rounds(def int) int {
	if n, err := strconv.Atoi(os.Getenv("BENCH_N")); err == nil && n > 0 {
		return n
	}
	return def
}

// Emit appends r as a JSON line to $BENCHCMP_OUT (nothing if unset).
func Emit(r Result) error {
	path := os.Getenv("BENCHCMP_OUT")
	if path == "" {
		return nil
	}
	line, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode result %s: %w", r.Name, err)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

// Bench runs c once from a Go benchmark (whatever b.N is: the comparison's
// own rounds are what count), reports its p50s as benchmark metrics and
// emits the result.
func Bench(b *testing.B, c Comparison) Result {
	b.Helper()
	if b.N > 1 {
		return Result{} // a comparison runs its own rounds: -benchtime 1x
	}
	r, err := Run(b.Context(), c)
	if err != nil {
		b.Fatal(err)
	}
	for _, m := range r.Metrics {
		b.ReportMetric(m.A.P50, noSpace(c.A.Name+"-p50-"+m.Unit))
		b.ReportMetric(m.B.P50, noSpace(c.B.Name+"-p50-"+m.Unit))
	}
	if err := Emit(r); err != nil {
		b.Fatal(err)
	}
	return r
}

func noSpace(s string) string { return strings.Join(strings.Fields(s), "_") }
