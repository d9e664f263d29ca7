package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/workspaced/workspaced/selftest"
)

// selfTest runs POST /v1/conversations/{id}/selftest and prints the
// report: a table, or the JSON with --json. Exit 0 when every check passed
// or does not apply, 1 when a check failed or the self-test could not run.
func (c *client) selfTest(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("selftest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	allowed := fs.String("allowed-host", "", "host:port the proxy must allow (checked when set)")
	noBomb := fs.Bool("no-fork-bomb", false, "skip the fork bomb")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() != 1 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	body := map[string]any{}
	if *allowed != "" {
		body["allowed_host"] = *allowed
	}
	if *noBomb {
		body["fork_bomb"] = false
	}
	b, _ := json.Marshal(body)
	resp, err := c.do(ctx, http.MethodPost, "/v1/conversations/"+url.PathEscape(fs.Arg(0))+"/selftest", strings.NewReader(string(b)))
	if err != nil {
		return errorf(stderr, "%v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusInternalServerError {
		return errorf(stderr, "%s", apiErrorText(resp))
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return errorf(stderr, "read report: %v", err)
	}
	rep, err := selftest.Parse(raw)
	if err != nil {
		return errorf(stderr, "%s: %v", resp.Status, err)
	}
	if *asJSON {
		out, _ := json.MarshalIndent(rep, "", "  ")
		fmt.Fprintln(stdout, string(out))
	} else {
		printReport(stdout, rep)
	}
	if !rep.Passed {
		fmt.Fprintf(stderr, "wsctl: self-test failed: %s\n", strings.Join(rep.Failed(), ", "))
		return exitFailed
	}
	return exitOK
}

// printReport prints one line per check, then the limits and a summary.
func printReport(w io.Writer, rep selftest.Report) {
	fmt.Fprintf(w, "runtime %s (%s); AppArmor: %s\n", rep.Runtime, rep.RuntimeEvidence, rep.AppArmor)
	for _, ch := range rep.Checks {
		line := fmt.Sprintf("%-15s %-28s %s", strings.ToUpper(string(ch.Status)), ch.ID, ch.Observed)
		if ch.Meaning != "" {
			line += " — " + ch.Meaning
		}
		fmt.Fprintln(w, line)
	}
	l := rep.Limits
	fmt.Fprintf(w, "limits: pids.max %s, memory.max %s, nproc %s/%s, nofile %s/%s, kernel.pid_max %s, threads-max %s (cgroup v%d)\n",
		l.PidsMax, l.MemoryMax, l.NprocSoft, l.NprocHard, l.NofileSoft, l.NofileHard, l.KernelPidMax, l.ThreadsMax, l.CgroupVersion)
	fmt.Fprintf(w, "%d passed, %d failed, %d not applicable (%d ms)\n", rep.Summary.Pass, rep.Summary.Fail, rep.Summary.NotApplicable, rep.DurationMS)
}
