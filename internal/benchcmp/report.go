package benchcmp

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
)

// ReadResults decodes the JSON lines Emit wrote.
func ReadResults(r io.Reader) ([]Result, error) {
	var out []Result
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var res Result
		if err := json.Unmarshal(sc.Bytes(), &res); err != nil {
			return nil, fmt.Errorf("decode result line: %w", err)
		}
		out = append(out, res)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read results: %w", err)
	}
	return out, nil
}

// Markdown renders results as the comparison section of BENCHMARKS.md.
func Markdown(w io.Writer, results []Result, command string) error {
	b := &strings.Builder{}
	fmt.Fprintf(b, "## Side by side\n\n")
	if len(results) > 0 {
		fmt.Fprintf(b, "Machine: %s; %s.\n", results[0].Machine, results[0].When.Format("2006-01-02 15:04 MST"))
	}
	fmt.Fprintf(b, "Command: `%s`\n\n", command)
	fmt.Fprintf(b, "Every comparison runs its two sides interleaved (A, B, A, B …, after warm-up rounds);\n")
	fmt.Fprintf(b, "percentiles are nearest-rank over the N rounds of each side. *vs A* is B/A (ratio) or\n")
	fmt.Fprintf(b, "B − A (difference) of the same percentile.\n\n")
	fmt.Fprintf(b, "| comparison | N | metric | side | p50 | p90 | p99 | vs A p50 | vs A p99 | goal |\n")
	fmt.Fprintf(b, "|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		for _, m := range r.Metrics {
			fmt.Fprintf(b, "| %s | %d | %s (%s) | A: %s | %s | %s | %s | | | |\n",
				r.Name, r.N, m.Name, m.Unit, r.A, num(m.A.P50), num(m.A.P90), num(m.A.P99))
			fmt.Fprintf(b, "| | | | B: %s | %s | %s | %s | %s | %s | %s |\n",
				r.B, num(m.B.P50), num(m.B.P90), num(m.B.P99),
				rel(m.Kind, compare(m.Kind, m.A.P50, m.B.P50)), rel(m.Kind, compare(m.Kind, m.A.P99, m.B.P99)), goals(m))
		}
	}
	notes := false
	for _, r := range results {
		if r.Note == "" {
			continue
		}
		if !notes {
			fmt.Fprintf(b, "\n")
			notes = true
		}
		fmt.Fprintf(b, "- **%s** (A: %s, B: %s): %s\n", r.Name, r.A, r.B, r.Note)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func goals(m MetricResult) string {
	if len(m.Checks) == 0 {
		return "—"
	}
	parts := make([]string, 0, len(m.Checks))
	for _, c := range m.Checks {
		op := "≥"
		if c.Max {
			op = "≤"
		}
		verdict := "met"
		if !c.Met {
			verdict = "**not met**"
		}
		parts = append(parts, fmt.Sprintf("%s %s %s: %s", c.Percentile, op, rel(m.Kind, c.Bound), verdict))
	}
	return strings.Join(parts, "; ")
}

func rel(k Kind, v float64) string {
	if k == Difference {
		return fmt.Sprintf("%+.*f", digits(v), v)
	}
	return fmt.Sprintf("×%.2f", v)
}

func num(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	return fmt.Sprintf("%.*f", digits(v), v)
}

// digits keeps about three significant figures.
func digits(v float64) int {
	switch a := math.Abs(v); {
	case a >= 1000:
		return 0
	case a >= 100:
		return 1
	case a >= 10:
		return 1
	case a >= 1:
		return 2
	}
	return 3
}

// ReplaceSection replaces the text between <!-- bench:name --> and
// <!-- /bench:name --> in doc with section, or appends the marked section.
func ReplaceSection(doc, name, section string) string {
	start, end := "<!-- bench:"+name+" -->", "<!-- /bench:"+name+" -->"
	block := start + "\n" + strings.TrimRight(section, "\n") + "\n" + end
	i := strings.Index(doc, start)
	j := strings.Index(doc, end)
	if i < 0 || j < i {
		return strings.TrimRight(doc, "\n") + "\n\n" + block + "\n"
	}
	return doc[:i] + block + doc[j+len(end):]
}
