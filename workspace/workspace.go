// Package workspace is the vocabulary every part of workspaced shares about a
// workspace: what is asked of a runtime when one is started, what a runtime
// reports about one, and the errors that tell a worker whether to retry.
//
// It depends on nothing of ours and on no adapter (Docker, AWS, Redis, HTTP),
// so runtimes, the store, workers and handlers can all import it.
package workspace

import (
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Status is a workspace's lifecycle state as a runtime reports it. The values
// are ECS's task lastStatus values; the Docker runtime maps container states
// onto them, so the rest of the system sees one vocabulary.
type Status string

// The statuses a runtime reports. Only RUNNING and STOPPED drive state changes
// in workspaced; the others are informational ("still starting").
const (
	StatusProvisioning   Status = "PROVISIONING"
	StatusPending        Status = "PENDING"
	StatusActivating     Status = "ACTIVATING"
	StatusRunning        Status = "RUNNING"
	StatusDeactivating   Status = "DEACTIVATING"
	StatusStopping       Status = "STOPPING"
	StatusDeprovisioning Status = "DEPROVISIONING"
	StatusStopped        Status = "STOPPED"
)

// Stopping reports whether s is on the way down or down (a workspace in such
// a state will never serve a request again).
func (s Status) Stopping() bool {
	switch s {
	case StatusDeactivating, StatusStopping, StatusDeprovisioning, StatusStopped:
		return true
	}
	return false
}

// StartSpec is what a worker asks a runtime to start. It is an args struct so
// it can grow without breaking every runtime.
type StartSpec struct {
	// Token makes Start idempotent: starting twice with one token yields one
	// workspace. It must satisfy ValidToken (it becomes a container name on
	// Docker and the RunTask clientToken on ECS).
	Token string
	// Conversation is the conversation the workspace is started for; empty
	// for a warm-pool workspace.
	Conversation string
	// Tenant is the owner's tenant, recorded in labels/tags for accounting.
	Tenant string
	// Pool marks a warm-pool workspace (started before anyone claims it).
	Pool bool
}

// Info is what a runtime knows about one workspace.
type Info struct {
	// ID is the runtime's handle: the container ID on Docker, the task ARN
	// on ECS. Task-state events carry it as detail.taskArn.
	ID string
	// Token is the idempotency token the workspace was started with.
	Token        string
	Conversation string
	Tenant       string
	Pool         bool
	Status       Status
	// Endpoint is how the backend reaches the agent: "unix:///path/agent.sock"
	// on Docker, "http://10.0.1.5:9000" on ECS. Empty until known (an ECS
	// task has no IP before its ENI is attached).
	Endpoint      string
	CreatedAt     time.Time
	StoppedReason string
	// ExitCode is the agent's exit code once stopped, if the runtime knows it.
	ExitCode *int
}

// Errors a runtime returns. Callers test them with errors.Is / errors.As.
var (
	// ErrNotFound: the runtime has no workspace with that ID.
	ErrNotFound = errors.New("workspace not found")
	// ErrCapacity: the runtime cannot place a workspace now (ECS RESOURCE:*
	// or AGENT failures, Docker out of resources). Retryable with backoff.
	ErrCapacity = errors.New("no capacity for workspace")
	// ErrInvalidSpec: the StartSpec is malformed. Terminal.
	ErrInvalidSpec = errors.New("invalid workspace spec")
	// ErrStartQueued: the caller's context ended while its start still
	// waited for admission (the runtime admits a bounded number of starts
	// at once). The start keeps its place: a retry with the same token
	// joins it. Not a failure of the start; retry.
	ErrStartQueued = errors.New("workspace start queued for admission")
)

// TerminalError wraps an error that retrying cannot fix (a bad task
// definition, an invalid spec, a failure reason ECS calls permanent, a
// message that does not decode). It is workspaced's one "do not retry"
// marker, like controller-runtime's reconcile.TerminalError: workers stop
// retrying on it and mark the conversation failed, and the bus's Router
// sends a message whose handler returns it to the poison destination
// without retries (bus.Handle marks undecodable payloads with it).
type TerminalError struct{ Err error }

func (e *TerminalError) Error() string { return e.Err.Error() }
func (e *TerminalError) Unwrap() error { return e.Err }

// Terminal marks err as not worth retrying. Terminal(nil) is nil.
func Terminal(err error) error {
	if err == nil {
		return nil
	}
	return &TerminalError{Err: err}
}

// IsTerminal reports whether err, or anything it wraps, is terminal:
// a TerminalError or ErrInvalidSpec.
func IsTerminal(err error) bool {
	var te *TerminalError
	return errors.As(err, &te) || errors.Is(err, ErrInvalidSpec)
}

var tokenRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// ValidToken checks a start token: 1–64 characters of [A-Za-z0-9_-], not
// starting with '_' or '-'. Both a Docker container name and an ECS
// clientToken accept every such token.
func ValidToken(token string) error {
	if !tokenRE.MatchString(token) {
		return fmt.Errorf("%w: token %q must match %s", ErrInvalidSpec, token, tokenRE)
	}
	return nil
}

var tenantRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.@+=-]{0,127}$`)

// ValidTenant checks a tenant name: 1–128 characters of [A-Za-z0-9_.@+=-],
// starting with a letter or digit. Every such name is a valid ECS tag value
// (≤ 256 letters, numbers, spaces and _ . : / = + - @, no aws: prefix), an
// S3 key segment (files.ValidSegment: no '/', space or control character)
// and a Docker label value, so a tenant accepted at configuration is never
// refused later by the runtime that stores it.
func ValidTenant(tenant string) error {
	if !tenantRE.MatchString(tenant) {
		return fmt.Errorf("%w: tenant %q must match %s", ErrInvalidSpec, tenant, tenantRE)
	}
	return nil
}
