// Package selftest is the vocabulary of the isolation self-test: the JSON
// report that cmd/workspace-selftest prints from inside a workspace, and
// that the API (POST /v1/conversations/{id}/selftest) and wsctl read back.
//
// A report is a list of checks, each with an expectation, what was
// observed, and a Status: pass, fail, or not-applicable (a check that does
// not apply to the runtime says so rather than passing silently). A report
// passes when no check failed.
package selftest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// SchemaVersion is the version of Report's JSON shape.
const SchemaVersion = 1

// Binary is the self-test's name in every workspace image, looked up in
// the agent's PATH (it sits beside the agent in /usr/local/bin).
const Binary = "workspace-selftest"

// Status is the outcome of one check.
type Status string

// The outcomes of a check.
const (
	Pass          Status = "pass"
	Fail          Status = "fail"
	NotApplicable Status = "not-applicable"
)

// Runtimes a report can name.
const (
	RuntimeDocker  = "docker"
	RuntimeECS     = "ecs"
	RuntimeUnknown = "unknown"
)

// Check is the result of one check.
type Check struct {
	// ID names the check, "<area>.<name>", e.g. "identity.capabilities".
	ID string `json:"id"`
	// Expect is what an isolated workspace shows.
	Expect string `json:"expect"`
	// Observed is what the check saw. It never holds a secret's value.
	Observed string `json:"observed"`
	Status   Status `json:"status"`
	// Meaning, on a failure, says what the failure exposes; on
	// not-applicable, why the check does not apply.
	Meaning string `json:"meaning,omitempty"`
}

// Limits are the effective resource limits seen from inside, verbatim
// ("max" means none). Empty when unreadable.
type Limits struct {
	CgroupVersion int    `json:"cgroup_version"`
	PidsMax       string `json:"pids_max"`
	MemoryMax     string `json:"memory_max"`
	MemorySwapMax string `json:"memory_swap_max,omitempty"`
	CPUMax        string `json:"cpu_max,omitempty"`
	NprocSoft     string `json:"nproc_soft"`
	NprocHard     string `json:"nproc_hard"`
	NofileSoft    string `json:"nofile_soft"`
	NofileHard    string `json:"nofile_hard"`
	KernelPidMax  string `json:"kernel_pid_max"`
	ThreadsMax    string `json:"kernel_threads_max"`
}

// Report is the self-test's whole output.
type Report struct {
	SchemaVersion int `json:"schema_version"`
	// Runtime is RuntimeDocker, RuntimeECS or RuntimeUnknown;
	// RuntimeEvidence says how it was told.
	Runtime         string `json:"runtime"`
	RuntimeEvidence string `json:"runtime_evidence"`
	// AppArmor is the label the self-test runs under ("workspace-container
	// (enforce)", "unconfined", or why there is none).
	AppArmor   string  `json:"apparmor"`
	Limits     Limits  `json:"limits"`
	Checks     []Check `json:"checks"`
	Passed     bool    `json:"passed"`
	Summary    Summary `json:"summary"`
	DurationMS int64   `json:"duration_ms"`
}

// Summary counts the checks by status.
type Summary struct {
	Pass          int `json:"pass"`
	Fail          int `json:"fail"`
	NotApplicable int `json:"not_applicable"`
}

// Finish sets Passed and Summary from Checks.
func (r *Report) Finish() {
	r.Summary = Summary{}
	for _, c := range r.Checks {
		switch c.Status {
		case Pass:
			r.Summary.Pass++
		case NotApplicable:
			r.Summary.NotApplicable++
		default:
			r.Summary.Fail++
		}
	}
	r.Passed = r.Summary.Fail == 0 && len(r.Checks) > 0
}

// Failed returns the IDs of the checks that failed, in report order.
func (r Report) Failed() []string {
	var ids []string
	for _, c := range r.Checks {
		if c.Status != Pass && c.Status != NotApplicable {
			ids = append(ids, c.ID)
		}
	}
	return ids
}

// Find returns the check with the given ID.
func (r Report) Find(id string) (Check, bool) {
	for _, c := range r.Checks {
		if c.ID == id {
			return c, true
		}
	}
	return Check{}, false
}

// ErrNoReport means the output holds no self-test report.
var ErrNoReport = errors.New("selftest: output holds no report")

// Parse reads the report from the self-test's output: the last line that
// is a JSON object with a schema_version (the binary prints exactly one;
// anything else a run printed is ignored). Unknown fields are allowed: a
// newer binary may report more.
func Parse(output []byte) (Report, error) {
	lines := bytes.Split(output, []byte("\n"))
	for i := len(lines) - 1; i >= 0; i-- {
		line := bytes.TrimSpace(lines[i])
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var r Report
		if err := json.Unmarshal(line, &r); err != nil || r.SchemaVersion == 0 {
			continue
		}
		if r.SchemaVersion > SchemaVersion {
			return r, fmt.Errorf("selftest: report schema %d is newer than %d", r.SchemaVersion, SchemaVersion)
		}
		r.Finish() // trust the checks, not the binary's summary
		return r, nil
	}
	return Report{}, ErrNoReport
}
