package agent_test

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/workspaced/workspaced/agent"
	"github.com/workspaced/workspaced/agent/api"
)

// A run's processes, and what they fork, have oom_score_adj
// agent.RunOOMScoreAdj; the agent keeps its own (lower) one.
func TestRunsHaveAHigherOOMScoreThanTheAgent(t *testing.T) {
	own, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		t.Fatalf("no /proc/self/oom_score_adj: %v", err)
	}
	ta := startAgent(t, nil)
	st, err := ta.client.Execute(testContext(t), api.ExecuteRequest{Kind: api.KindCommand,
		Argv: []string{"sh", "-c", "cat /proc/self/oom_score_adj; sh -c 'cat /proc/self/oom_score_adj'"}})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range collect(t, st) {
		if ev.Event == api.EventStdout {
			out = append(out, ev.Data)
		}
	}
	want := strconv.Itoa(agent.RunOOMScoreAdj)
	if len(out) != 2 || out[0] != want || out[1] != want {
		t.Fatalf("run's scores %q, want %s twice", out, want)
	}
	after, _ := os.ReadFile("/proc/self/oom_score_adj")
	if strings.TrimSpace(string(after)) != strings.TrimSpace(string(own)) {
		t.Fatalf("the agent's score went from %s to %s", own, after)
	}
}
