// Command benchreport renders the comparisons that benchmarks emitted
// (benchcmp.Emit, one JSON line each) into the "compare" section of
// BENCHMARKS.md. Used by scripts/bench.sh.
//
//	benchreport -in results.jsonl -doc BENCHMARKS.md -command 'make bench'
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/workspaced/workspaced/internal/benchcmp"
)

func main() {
	in := flag.String("in", "", "JSON lines written by benchcmp.Emit")
	doc := flag.String("doc", "BENCHMARKS.md", "Markdown file whose compare section is replaced")
	command := flag.String("command", "make bench", "the command that reproduces the figures")
	flag.Parse()
	if err := run(*in, *doc, *command); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

func run(in, doc, command string) error {
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	results, err := benchcmp.ReadResults(f)
	if err != nil {
		return err
	}
	if len(results) == 0 {
		return fmt.Errorf("%s: no results", in)
	}
	var sec strings.Builder
	if err := benchcmp.Markdown(&sec, results, command); err != nil {
		return err
	}
	text, err := os.ReadFile(doc)
	if err != nil {
		return err
	}
	out := benchcmp.ReplaceSection(string(text), "compare", sec.String())
	if err := os.WriteFile(doc, []byte(out), 0o644); err != nil {
		return err
	}
	fmt.Print(sec.String())
	return nil
}
