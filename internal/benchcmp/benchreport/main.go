// Command benchreport renders the comparisons that benchmarks emitted
// (benchcmp.Emit, one JSON line each) into the "compare" section of
// BENCHMARKS.md. Used by scripts/bench.sh.
//
//	benchreport -in results.jsonl -doc BENCHMARKS.md -command 'make bench'
//	benchreport -section proxy -markdown proxy.md -doc BENCHMARKS.md
//
// The second form replaces the section named by -section with the
// Markdown of another bench script.
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
	section := flag.String("section", "", "replace this section of -doc with the file named by -markdown")
	markdown := flag.String("markdown", "", "Markdown for -section")
	flag.Parse()
	var err error
	if *section != "" {
		err = replace(*doc, *section, *markdown)
	} else {
		err = run(*in, *doc, *command)
	}
	if err != nil {
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

func replace(doc, section, markdown string) error {
	sec, err := os.ReadFile(markdown)
	if err != nil {
		return err
	}
	text, err := os.ReadFile(doc)
	if err != nil {
		return err
	}
	return os.WriteFile(doc, []byte(benchcmp.ReplaceSection(string(text), section, string(sec))), 0o644)
}
