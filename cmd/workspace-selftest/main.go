// Command workspace-selftest checks, from inside a workspace, that the
// workspace is isolated, and prints one JSON report (package selftest) on
// stdout. It ships in every workspace image beside the agent and runs
// through the agent like any command (`wsctl selftest <conversation>`,
// POST /v1/conversations/{id}/selftest).
//
// The checks cover identity and privileges (uid/gid, capabilities,
// no_new_privs, seccomp and syscalls it must deny), the filesystem
// (read-only root, the configured tmpfs mounts, no host paths or foreign
// sockets), resources (memory and pids limits, a bounded fork bomb),
// credentials (environment, other processes' environment, files, the ECS
// credential endpoint), the network (IMDS v4/v6, direct egress, the
// proxy's allowlist, DNS), and the AppArmor label. The runtime (Docker or
// ECS) is detected from the agent's environment; checks that do not apply
// to it say so.
//
// Exit status: 0 when every check passed or does not apply, 1 when a check
// failed, 2 on a bad command line. The expectations default to the shipped
// configuration (docs/contracts.md §6, the ECS task definition); flags override them.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/workspaced/workspaced/selftest"
)

func main() {
	if len(os.Args) > 1 {
		if code, ok := helper(os.Args[1:]); ok {
			os.Exit(code)
		}
	}
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// Exit statuses.
const (
	exitPass  = 0
	exitFail  = 1
	exitUsage = 2
)

// run parses args, runs every check and prints the report.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return exitUsage
	}
	start := time.Now()
	rep := runChecks(ctx, cfg)
	rep.DurationMS = time.Since(start).Milliseconds()
	rep.Finish()
	enc := json.NewEncoder(stdout)
	if cfg.pretty {
		enc.SetIndent("", "  ")
	}
	if err := enc.Encode(rep); err != nil {
		fmt.Fprintf(stderr, "workspace-selftest: write report: %v\n", err)
		return exitFail
	}
	if !rep.Passed {
		return exitFail
	}
	return exitPass
}

// runChecks runs the checks in a fixed order. The fork bomb runs last but
// one: the agent's liveness after it is part of its own check.
func runChecks(ctx context.Context, cfg config) selftest.Report {
	env := detect(cfg)
	rep := selftest.Report{
		SchemaVersion:   selftest.SchemaVersion,
		Runtime:         env.runtime,
		RuntimeEvidence: env.evidence,
	}
	rep.AppArmor, _ = apparmorLabel()
	rep.Limits = readLimits()
	groups := []func(context.Context, config, runtimeEnv) []selftest.Check{
		identityChecks,
		filesystemChecks,
		credentialChecks,
		networkChecks,
		hardeningChecks,
		resourceChecks,
	}
	for _, g := range groups {
		rep.Checks = append(rep.Checks, g(ctx, cfg, env)...)
	}
	return rep
}

// check builds a Check: pass when ok, else fail with meaning.
func check(id, expect, observed string, ok bool, meaning string) selftest.Check {
	c := selftest.Check{ID: id, Expect: expect, Observed: observed, Status: selftest.Pass}
	if !ok {
		c.Status = selftest.Fail
		c.Meaning = meaning
	}
	return c
}

// notApplicable builds a check that does not apply, and why.
func notApplicable(id, expect, why string) selftest.Check {
	return selftest.Check{ID: id, Expect: expect, Observed: "not checked", Status: selftest.NotApplicable, Meaning: why}
}
