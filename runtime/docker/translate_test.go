package docker

import (
	"strings"
	"testing"

	dockerevents "github.com/docker/docker/api/types/events"

	"github.com/workspaced/workspaced/events"
)

// msg builds an engine container event as the engine sends it: labels and
// action-specific attributes in Actor.Attributes.
func msg(action dockerevents.Action, nano int64, attrs ...string) dockerevents.Message {
	a := map[string]string{LabelManagedBy: ManagedBy, LabelToken: "tok", LabelConversation: "conv-1", "image": "workspaced/workspace:dev", "name": "ws-tok"}
	for i := 0; i+1 < len(attrs); i += 2 {
		a[attrs[i]] = attrs[i+1]
	}
	return dockerevents.Message{Type: dockerevents.ContainerEventType, Action: action, Actor: dockerevents.Actor{ID: "c0ffee", Attributes: a}, TimeNano: nano, Time: nano / 1e9}
}

func TestTranslate(t *testing.T) {
	t.Parallel()
	type want struct {
		status, reason, stopCode string
		exit                     int // -1: none
		containerReason          string
	}
	tests := []struct {
		name string
		in   []dockerevents.Message
		want []want // one per emitted envelope, in order
	}{
		{
			name: "start is RUNNING",
			in:   []dockerevents.Message{msg("start", 10)},
			want: []want{{status: "RUNNING", exit: -1}},
		},
		{
			name: "docker kill: kill is silent, die is STOPPED with the signal",
			in:   []dockerevents.Message{msg("start", 10), msg("kill", 20, "signal", "9"), msg("die", 30, "exitCode", "137")},
			want: []want{{status: "RUNNING", exit: -1}, {status: "STOPPED", reason: "stopped by SIGKILL; exit code 137 (SIGKILL)", stopCode: "UserInitiated", exit: 137}},
		},
		{
			name: "graceful stop: SIGTERM then a clean exit",
			in:   []dockerevents.Message{msg("kill", 20, "signal", "15"), msg("die", 30, "exitCode", "0"), msg("destroy", 40)},
			want: []want{
				{status: "STOPPED", reason: "stopped by SIGTERM; exit code 0", stopCode: "UserInitiated", exit: 0},
				{status: "STOPPED", reason: "stopped by SIGTERM; exit code 0", stopCode: "UserInitiated", exit: 0},
			},
		},
		{
			name: "oom kill of the agent",
			in:   []dockerevents.Message{msg("oom", 20), msg("die", 30, "exitCode", "137")},
			want: []want{{status: "STOPPED", reason: reasonOOM + "; exit code 137 (SIGKILL)", stopCode: "EssentialContainerExited", exit: 137, containerReason: reasonOOM}},
		},
		{
			name: "oom of a child, later a kill: the kill explains the exit",
			in:   []dockerevents.Message{msg("oom", 20), msg("kill", 25, "signal", "SIGKILL"), msg("die", 30, "exitCode", "137")},
			want: []want{{status: "STOPPED", reason: "stopped by SIGKILL; exit code 137 (SIGKILL)", stopCode: "UserInitiated", exit: 137}},
		},
		{
			name: "oom of a child, agent exits by itself",
			in:   []dockerevents.Message{msg("oom", 20), msg("die", 30, "exitCode", "1")},
			want: []want{{status: "STOPPED", reason: "agent exited; exit code 1", stopCode: "EssentialContainerExited", exit: 1}},
		},
		{
			name: "destroy without a die seen (stream joined late)",
			in:   []dockerevents.Message{msg("destroy", 40)},
			want: []want{{status: "STOPPED", reason: "workspace container removed", stopCode: "UserInitiated", exit: -1}},
		},
		{
			name: "a restart forgets the previous run",
			in:   []dockerevents.Message{msg("kill", 5, "signal", "9"), msg("start", 10), msg("die", 30, "exitCode", "2")},
			want: []want{{status: "RUNNING", exit: -1}, {status: "STOPPED", reason: "agent exited; exit code 2", stopCode: "EssentialContainerExited", exit: 2}},
		},
		{
			name: "other actions and malformed events change nothing",
			in: []dockerevents.Message{
				msg("create", 1), msg("attach", 2), msg("exec_create: sh", 3),
				{Type: dockerevents.NetworkEventType, Action: "connect", Actor: dockerevents.Actor{ID: "n"}, TimeNano: 4},
				{Type: dockerevents.ContainerEventType, Action: "start", TimeNano: 5},
				{Type: dockerevents.ContainerEventType, Action: "start", Actor: dockerevents.Actor{ID: "x"}},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tr := newTranslator()
			var got []events.TaskStateChange
			for _, m := range tc.in {
				if e, ok := tr.translate(m); ok {
					got = append(got, e)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d envelopes %+v, want %d", len(got), got, len(tc.want))
			}
			for i, w := range tc.want {
				e := got[i]
				if err := e.Validate(); err != nil {
					t.Errorf("envelope %d invalid: %v", i, err)
				}
				d := e.Detail
				if d.LastStatus != w.status || d.DesiredStatus != w.status || d.StoppedReason != w.reason || d.StopCode != w.stopCode {
					t.Errorf("envelope %d: last %s desired %s reason %q stopCode %q; want %s %q %q", i, d.LastStatus, d.DesiredStatus, d.StoppedReason, d.StopCode, w.status, w.reason, w.stopCode)
				}
				c := d.Containers[0]
				if (w.exit == -1) != (c.ExitCode == nil) || (c.ExitCode != nil && *c.ExitCode != w.exit) {
					t.Errorf("envelope %d: exit code %v, want %d", i, c.ExitCode, w.exit)
				}
				if c.Reason != w.containerReason || c.Name != AgentContainerName {
					t.Errorf("envelope %d: container %+v", i, c)
				}
				if e.Source != events.SourceDocker || e.DetailType != events.DetailTypeTaskStateChange || d.TaskArn != "c0ffee" ||
					d.StartedBy != "workspaced" || d.Group != "conversation:conv-1" || d.Version != e.Time.UnixNano() {
					t.Errorf("envelope %d: %+v", i, e)
				}
			}
		})
	}
}

func TestTranslateIsDeterministicOnReplay(t *testing.T) {
	t.Parallel()
	a, _ := newTranslator().translate(msg("start", 42))
	b, _ := newTranslator().translate(msg("start", 42))
	c, _ := newTranslator().translate(msg("start", 43))
	if a.ID != b.ID || a.Detail.Version != b.Detail.Version {
		t.Errorf("a replayed event got a new identity: %s/%d vs %s/%d", a.ID, a.Detail.Version, b.ID, b.Detail.Version)
	}
	if a.ID == c.ID {
		t.Error("two events share an envelope ID")
	}
}

func TestGroupOf(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		labels map[string]string
		want   string
	}{
		{map[string]string{LabelConversation: "c"}, "conversation:c"},
		{map[string]string{LabelPool: "true"}, "pool"},
		{map[string]string{}, ""},
	} {
		if got := groupOf(tc.labels); got != tc.want {
			t.Errorf("groupOf(%v) = %q, want %q", tc.labels, got, tc.want)
		}
	}
	if !strings.HasPrefix(exitDescription(139, ""), "exit code 139 (SIGSEGV)") {
		t.Errorf("exitDescription(139) = %q", exitDescription(139, ""))
	}
}
