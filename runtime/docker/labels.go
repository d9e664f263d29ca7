package docker

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/workspaced/workspaced/workspace"
)

// Label keys on every workspace container. The reconciler and the event
// watcher find workspaces by LabelManagedBy=ManagedBy.
const (
	labelPrefix = "io.workspaced."

	LabelManagedBy    = labelPrefix + "managed-by"
	LabelToken        = labelPrefix + "token"
	LabelCreatedAt    = labelPrefix + "created-at" // RFC 3339, UTC
	LabelConversation = labelPrefix + "conversation"
	LabelTenant       = labelPrefix + "tenant"
	LabelPool         = labelPrefix + "pool" // "true" for warm-pool workspaces

	// ManagedBy is LabelManagedBy's value, and the envelope's startedBy.
	ManagedBy = "workspaced"
)

// labelsFor returns the labels of a new workspace container.
func (r *Runtime) labelsFor(spec workspace.StartSpec) map[string]string {
	l := make(map[string]string, len(r.opts.Labels)+6)
	for k, v := range r.opts.Labels {
		l[k] = v
	}
	l[LabelManagedBy] = ManagedBy
	l[LabelToken] = spec.Token
	l[LabelCreatedAt] = r.opts.Now().UTC().Format(time.RFC3339Nano)
	if spec.Conversation != "" {
		l[LabelConversation] = spec.Conversation
	}
	if spec.Tenant != "" {
		l[LabelTenant] = spec.Tenant
	}
	if spec.Pool {
		l[LabelPool] = "true"
	}
	return l
}

// managed reports whether labels mark a container of this runtime: ours,
// and carrying the runtime's own extra labels.
func (r *Runtime) managed(labels map[string]string) bool {
	if labels[LabelManagedBy] != ManagedBy {
		return false
	}
	for k, v := range r.opts.Labels {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// infoFromLabels fills what labels say about a workspace.
func (r *Runtime) infoFromLabels(id string, labels map[string]string) workspace.Info {
	info := workspace.Info{
		ID:           id,
		Token:        labels[LabelToken],
		Conversation: labels[LabelConversation],
		Tenant:       labels[LabelTenant],
		Pool:         labels[LabelPool] == "true",
	}
	if t, err := time.Parse(time.RFC3339Nano, labels[LabelCreatedAt]); err == nil {
		info.CreatedAt = t
	}
	if workspace.ValidToken(info.Token) == nil {
		info.Endpoint = "unix://" + r.agentSocket(info.Token)
	}
	return info
}

// statusOf maps a Docker container state onto the ECS lastStatus values.
// A paused or restarting container cannot serve but is not gone: PENDING.
func statusOf(state container.ContainerState) workspace.Status {
	switch state {
	case container.StateRunning:
		return workspace.StatusRunning
	case container.StateRemoving:
		return workspace.StatusDeprovisioning
	case container.StateExited, container.StateDead:
		return workspace.StatusStopped
	default: // created, paused, restarting
		return workspace.StatusPending
	}
}

// stoppedReason describes why a stopped container stopped.
func stoppedReason(s *container.State) string {
	if s == nil {
		return ""
	}
	var parts []string
	if s.OOMKilled {
		parts = append(parts, reasonOOM)
	}
	parts = append(parts, exitDescription(s.ExitCode, ""))
	if s.Error != "" {
		parts = append(parts, "error: "+s.Error)
	}
	return strings.Join(parts, "; ")
}

// reasonOOM mirrors the ECS container reason for memory kills.
const reasonOOM = "OutOfMemoryError: container killed by the kernel OOM killer"

// exitDescription says how a process ended: "exit code 0", or for 128+n
// "exit code 137 (SIGKILL)". signal, when known (from a kill event), names
// the signal that was sent.
func exitDescription(code int, signal string) string {
	s := "exit code " + strconv.Itoa(code)
	if signal == "" && code > 128 && code < 128+65 {
		signal = signalName(code - 128)
	}
	if signal != "" {
		s += fmt.Sprintf(" (%s)", signal)
	}
	return s
}

var signalNames = map[int]string{
	1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 6: "SIGABRT", 7: "SIGBUS",
	8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2",
	13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM", 24: "SIGXCPU", 25: "SIGXFSZ", 31: "SIGSYS",
}

// signalName names signal n ("SIGKILL"), or "signal n".
func signalName(n int) string {
	if s, ok := signalNames[n]; ok {
		return s
	}
	return "signal " + strconv.Itoa(n)
}
