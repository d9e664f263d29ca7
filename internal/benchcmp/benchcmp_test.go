package benchcmp

import (
	"context"
	"math"
	"strings"
	"testing"
)

func TestPercentile(t *testing.T) {
	t.Parallel()
	xs := []float64{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
	for _, tc := range []struct {
		p    float64
		want float64
	}{{50, 5}, {90, 9}, {99, 10}, {1, 1}, {100, 10}} {
		if got := Percentile(xs, tc.p); got != tc.want {
			t.Errorf("p%v = %v, want %v", tc.p, got, tc.want)
		}
	}
	if xs[0] != 5 {
		t.Error("Percentile sorted its input in place")
	}
	if !math.IsNaN(Percentile(nil, 50)) {
		t.Error("no samples: want NaN")
	}
}

// TestRunInterleaves checks the order of the rounds (warm-up first, then
// A, B, A, B …) and the goal checks computed from the samples.
func TestRunInterleaves(t *testing.T) {
	t.Parallel()
	var order []string
	side := func(name string, v float64) Side {
		return Side{Name: name, Run: func(context.Context) (Sample, error) {
			order = append(order, name)
			return Sample{"ms": v}, nil
		}}
	}
	c := Comparison{Name: "x", N: 3, Warmup: 1, A: side("a", 2), B: side("b", 3),
		Metrics: []Metric{
			{Name: "ms", Unit: "ms", Kind: Ratio, Max: map[string]float64{"p50": 1.4}},
			{Name: "ms", Unit: "ms", Kind: Difference, Max: map[string]float64{"p99": 0.5}, Min: map[string]float64{"p50": 1}},
		}}
	r, err := Run(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(order, ""); got != "abababab" {
		t.Errorf("order %q, want abababab", got)
	}
	if r.N != 3 {
		t.Errorf("N = %d", r.N)
	}
	ratio := r.Metrics[0].Checks
	if len(ratio) != 1 || ratio[0].Value != 1.5 || ratio[0].Met {
		t.Errorf("ratio checks %+v, want 1.5 not met", ratio)
	}
	diff := r.Metrics[1].Checks
	if len(diff) != 2 || !diff[0].Met || diff[1].Met {
		t.Errorf("difference checks %+v, want p50 ≥ 1 met, p99 ≤ 0.5 not met", diff)
	}
	var md strings.Builder
	if err := Markdown(&md, []Result{r}, "make bench"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| x | 3 | ms (ms) | A: a |", "×1.50", "**not met**", "`make bench`"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
}

func TestReplaceSection(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, doc, want string }{
		{"replace", "a\n<!-- bench:s -->\nold\n<!-- /bench:s -->\nz\n", "a\n<!-- bench:s -->\nnew\n<!-- /bench:s -->\nz\n"},
		{"append", "a\n", "a\n\n<!-- bench:s -->\nnew\n<!-- /bench:s -->\n"},
	} {
		if got := ReplaceSection(tc.doc, "s", "new\n"); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}
