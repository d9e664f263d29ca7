package docker

import (
	"strconv"
	"strings"
	"time"

	dockerevents "github.com/docker/docker/api/types/events"
	"github.com/google/uuid"

	"github.com/workspaced/workspaced/events"
	"github.com/workspaced/workspaced/workspace"
)

// AgentContainerName is the envelope's containers[0].name, the name of the
// agent container in the ECS task definition (deploy/names.json).
const AgentContainerName = "workspace-agent"

// Stop codes, from ECS's vocabulary.
const (
	stopCodeUserInitiated = "UserInitiated"
	stopCodeExited        = "EssentialContainerExited"
)

// envelopeNS namespaces envelope IDs: the ID is a UUID derived from the
// engine event, so a replayed event keeps its ID.
var envelopeNS = uuid.MustParse("6f1c1b39-8f3e-4d52-9b0a-3c1d6c1e7a54")

// exitState is what the translator remembers about a container between its
// kill/oom/die and destroy events.
type exitState struct {
	signal   string // last signal sent (kill event)
	oom      bool   // an oom event was seen since start
	exitCode *int   // from die
	reason   string // stoppedReason of the die envelope
	stopCode string
}

// translator turns engine container events into task-state envelopes. It
// keeps a little per-container memory (a kill's signal, an oom) so the die
// envelope can say why; it is used by one goroutine.
//
// Mapping (docs in Watcher):
//
//	start   → RUNNING / desired RUNNING
//	kill    → nothing (a signal, maybe caught; remembered for die's reason)
//	oom     → nothing (the OOM killer may have killed a child, not the
//	          agent; remembered: a later die with exit code 137 and no
//	          kill in between is reported as an OOM kill)
//	die     → STOPPED / desired STOPPED, exit code, reason, stop code
//	destroy → STOPPED / desired STOPPED, repeating die's reason
type translator struct {
	state map[string]*exitState
}

// maxTracked bounds the translator's memory; containers that die and are
// never removed would otherwise accumulate.
const maxTracked = 4096

func newTranslator() *translator { return &translator{state: map[string]*exitState{}} }

func (t *translator) get(id string) *exitState {
	s, ok := t.state[id]
	if !ok {
		if len(t.state) >= maxTracked {
			for k := range t.state { // evict an arbitrary entry
				delete(t.state, k)
				break
			}
		}
		s = &exitState{}
		t.state[id] = s
	}
	return s
}

// translate returns the envelope for m, or false when m changes no state.
func (t *translator) translate(m dockerevents.Message) (events.TaskStateChange, bool) {
	id := m.Actor.ID
	if m.Type != dockerevents.ContainerEventType || id == "" || m.TimeNano <= 0 {
		return events.TaskStateChange{}, false
	}
	at := time.Unix(0, m.TimeNano).UTC()
	e := t.envelope(m, at)
	switch m.Action {
	case dockerevents.ActionStart:
		delete(t.state, id) // a fresh run
		e.Detail.LastStatus = string(workspace.StatusRunning)
		e.Detail.DesiredStatus = string(workspace.StatusRunning)
		e.Detail.StartedAt = &at
		e.Detail.Containers[0].LastStatus = string(workspace.StatusRunning)
		return e, true
	case dockerevents.ActionKill:
		if sig := m.Actor.Attributes["signal"]; sig != "" {
			if n, err := strconv.Atoi(sig); err == nil {
				sig = signalName(n)
			}
			s := t.get(id)
			s.signal, s.oom = sig, false // the latest of kill and oom explains a SIGKILL exit
		}
		return events.TaskStateChange{}, false
	case dockerevents.ActionOOM:
		s := t.get(id)
		s.oom, s.signal = true, ""
		return events.TaskStateChange{}, false
	case dockerevents.ActionDie:
		s := t.get(id)
		if code, err := strconv.Atoi(m.Actor.Attributes["exitCode"]); err == nil {
			s.exitCode = &code
		}
		s.reason, s.stopCode = dieReason(s)
		t.stopped(&e, s, at)
		return e, true
	case dockerevents.ActionDestroy:
		s := t.get(id)
		delete(t.state, id)
		if s.reason == "" {
			s.reason, s.stopCode = "workspace container removed", stopCodeUserInitiated
		}
		t.stopped(&e, s, at)
		return e, true
	}
	return events.TaskStateChange{}, false
}

func dieReason(s *exitState) (reason, stopCode string) {
	code := -1
	if s.exitCode != nil {
		code = *s.exitCode
	}
	switch {
	case s.oom && code == 137: // the OOM killer sends SIGKILL
		return reasonOOM + "; " + exitDescription(code, ""), stopCodeExited
	case s.signal != "":
		return "stopped by " + s.signal + "; " + exitDescription(code, ""), stopCodeUserInitiated
	default:
		return "agent exited; " + exitDescription(code, ""), stopCodeExited
	}
}

func (t *translator) stopped(e *events.TaskStateChange, s *exitState, at time.Time) {
	e.Detail.LastStatus = string(workspace.StatusStopped)
	e.Detail.DesiredStatus = string(workspace.StatusStopped)
	e.Detail.StoppedReason = s.reason
	e.Detail.StopCode = s.stopCode
	e.Detail.StoppedAt = &at
	c := &e.Detail.Containers[0]
	c.LastStatus = string(workspace.StatusStopped)
	c.ExitCode = s.exitCode
	if strings.HasPrefix(s.reason, reasonOOM) {
		c.Reason = reasonOOM
	}
}

// envelope fills the fields every envelope of m shares. Version is the
// event's TimeNano: increasing per container, and the same when the engine
// replays the event, so duplicates dedupe in the store.
func (t *translator) envelope(m dockerevents.Message, at time.Time) events.TaskStateChange {
	id := m.Actor.ID
	attrs := m.Actor.Attributes
	e := events.TaskStateChange{
		Version:    "0",
		ID:         uuid.NewSHA1(envelopeNS, []byte(id+"/"+string(m.Action)+"/"+strconv.FormatInt(m.TimeNano, 10))).String(),
		DetailType: events.DetailTypeTaskStateChange,
		Source:     events.SourceDocker,
		Time:       at,
		Resources:  []string{id},
		Detail: events.TaskDetail{
			TaskArn:    id,
			Version:    m.TimeNano,
			StartedBy:  ManagedBy,
			Group:      groupOf(attrs),
			Containers: []events.Container{{Name: AgentContainerName, ContainerArn: id}},
			UpdatedAt:  &at,
		},
	}
	if c, err := time.Parse(time.RFC3339Nano, attrs[LabelCreatedAt]); err == nil {
		e.Detail.CreatedAt = &c
	}
	return e
}

// groupOf names what a workspace serves, as ECS's task group would:
// "conversation:<id>", "pool", or "" when the labels say neither.
func groupOf(labels map[string]string) string {
	if c := labels[LabelConversation]; c != "" {
		return "conversation:" + c
	}
	if labels[LabelPool] == "true" {
		return "pool"
	}
	return ""
}
