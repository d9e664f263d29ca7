package events_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/workspaced/workspaced/events"
)

// readSample reads testdata/<dir>/<name>: "aws" holds AWS's documented
// samples verbatim, "ecs" our own envelopes.
func readSample(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDecodeTaskStateChangeSamples decodes our real-shaped EventBridge
// envelopes (AWS's own samples: TestDecodeAWSDocumentedSamples).
func TestDecodeTaskStateChangeSamples(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file          string
		source        string
		taskArn       string
		lastStatus    string
		desiredStatus string
		version       int64
		ip            string
		stopCode      string
		exitCode      *int
		updatedAt     time.Time
	}{
		{
			file:          "provisioning-precreated.json",
			source:        events.SourceECS,
			taskArn:       "arn:aws:ecs:eu-west-1:111122223333:task/workspaces/0f9a7c2d4e6b48a1b3c5d7e9f1a2b4c6",
			lastStatus:    "PROVISIONING",
			desiredStatus: "RUNNING",
			version:       1,
			ip:            "", // the ENI is PRECREATED: no address yet
			updatedAt:     time.Date(2026, 3, 2, 9, 14, 3, 112e6, time.UTC),
		},
		{
			file:          "running-unknown-fields.json",
			source:        events.SourceECS,
			taskArn:       "arn:aws:ecs:eu-west-1:111122223333:task/workspaces/0f9a7c2d4e6b48a1b3c5d7e9f1a2b4c6",
			lastStatus:    "RUNNING",
			desiredStatus: "RUNNING",
			version:       3,
			ip:            "10.0.3.104",
			updatedAt:     time.Date(2026, 3, 2, 9, 14, 19, 4e6, time.UTC),
		},
		{
			file:          "stopped-essential-exited.json",
			source:        events.SourceECS,
			taskArn:       "arn:aws:ecs:eu-west-1:111122223333:task/workspaces/0f9a7c2d4e6b48a1b3c5d7e9f1a2b4c6",
			lastStatus:    "STOPPED",
			desiredStatus: "STOPPED",
			version:       6,
			ip:            "10.0.3.104",
			stopCode:      "EssentialContainerExited",
			exitCode:      ptr(137),
			updatedAt:     time.Date(2026, 3, 2, 10, 2, 41, 553e6, time.UTC),
		},
		{
			file:          "docker-running.json",
			source:        events.SourceDocker,
			taskArn:       "8d0c1e6f2a4b7c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f",
			lastStatus:    "RUNNING",
			desiredStatus: "RUNNING",
			version:       1772442859000000000,
			updatedAt:     time.Date(2026, 3, 2, 9, 14, 19, 4e6, time.UTC),
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			e, err := events.DecodeTaskStateChange(readSample(t, "ecs", tt.file))
			if err != nil {
				t.Fatalf("DecodeTaskStateChange: %v", err)
			}
			d := e.Detail
			if e.DetailType != events.DetailTypeTaskStateChange || e.Source != tt.source {
				t.Errorf("detail-type %q source %q", e.DetailType, e.Source)
			}
			if d.TaskArn != tt.taskArn || d.LastStatus != tt.lastStatus || d.DesiredStatus != tt.desiredStatus {
				t.Errorf("task %q %s/%s, want %q %s/%s", d.TaskArn, d.LastStatus, d.DesiredStatus, tt.taskArn, tt.lastStatus, tt.desiredStatus)
			}
			if d.Version != tt.version {
				t.Errorf("version %d, want %d", d.Version, tt.version)
			}
			if got := d.PrivateIPv4(); got != tt.ip {
				t.Errorf("PrivateIPv4() = %q, want %q", got, tt.ip)
			}
			if d.StopCode != tt.stopCode {
				t.Errorf("stopCode %q, want %q", d.StopCode, tt.stopCode)
			}
			if tt.exitCode != nil {
				if len(d.Containers) == 0 || d.Containers[0].ExitCode == nil || *d.Containers[0].ExitCode != *tt.exitCode {
					t.Errorf("containers[0].exitCode, want %d: %+v", *tt.exitCode, d.Containers)
				}
			}
			if d.UpdatedAt == nil || !d.UpdatedAt.Equal(tt.updatedAt) {
				t.Errorf("updatedAt %v, want %v", d.UpdatedAt, tt.updatedAt)
			}
		})
	}
}

func TestDecodeTaskStateChangeRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
	}{
		{"empty", ``},
		{"not json", `<xml/>`},
		{"array", `[]`},
		{"null", `null`},
		{"other detail-type", `{"detail-type":"ECS Container Instance State Change","source":"aws.ecs","detail":{"taskArn":"t","lastStatus":"RUNNING","version":1}}`},
		{"no detail-type", `{"source":"aws.ecs","detail":{"taskArn":"t","lastStatus":"RUNNING","version":1}}`},
		{"no task arn", `{"detail-type":"ECS Task State Change","detail":{"lastStatus":"RUNNING","version":1}}`},
		{"no last status", `{"detail-type":"ECS Task State Change","detail":{"taskArn":"t","version":1}}`},
		{"negative version", `{"detail-type":"ECS Task State Change","detail":{"taskArn":"t","lastStatus":"RUNNING","version":-1}}`},
		{"version as string", `{"detail-type":"ECS Task State Change","detail":{"taskArn":"t","lastStatus":"RUNNING","version":"4"}}`},
		{"epoch timestamps (DescribeTasks shape)", `{"detail-type":"ECS Task State Change","detail":{"taskArn":"t","lastStatus":"RUNNING","version":1,"updatedAt":1579802278.103}}`},
		{"detail is a string", `{"detail-type":"ECS Task State Change","detail":"{}"}`},
		{"trailing garbage", `{"detail-type":"ECS Task State Change","detail":{"taskArn":"t","lastStatus":"RUNNING","version":1}} x`},
		{"sqs wrapper around the envelope", `{"Records":[{"body":"{}"}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := events.DecodeTaskStateChange([]byte(tt.body))
			checkDecodeErr(t, "task state change", err, malformed)
		})
	}
}

func TestTaskStateChangeRoundTrip(t *testing.T) {
	t.Parallel()
	e, err := events.DecodeTaskStateChange(readSample(t, "aws", "ecs-task-state-change-fargate-running.json"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := events.EncodeTaskStateChange(e)
	if err != nil {
		t.Fatal(err)
	}
	e2, err := events.DecodeTaskStateChange(b)
	if err != nil {
		t.Fatalf("decode re-encoded envelope: %v", err)
	}
	b2, err := events.EncodeTaskStateChange(e2)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, b2) {
		t.Fatalf("encoding is not stable:\n%s\n%s", b, b2)
	}
	if !bytes.Contains(b, []byte(`"detail-type":"ECS Task State Change"`)) || !bytes.Contains(b, []byte(`"privateIPv4Address"`)) {
		t.Fatalf("re-encoded envelope lost the wire names: %s", b)
	}
}

func TestPrivateIPv4(t *testing.T) {
	t.Parallel()
	eni := func(typ string, kv ...string) events.Attachment {
		a := events.Attachment{Type: typ}
		for i := 0; i+1 < len(kv); i += 2 {
			a.Details = append(a.Details, events.KeyValuePair{Name: kv[i], Value: kv[i+1]})
		}
		return a
	}
	tests := []struct {
		name   string
		detail events.TaskDetail
		want   string
	}{
		{"no attachments", events.TaskDetail{}, ""},
		{"event eni", events.TaskDetail{Attachments: []events.Attachment{eni("eni", "subnetId", "s", "privateIPv4Address", "10.1.2.3")}}, "10.1.2.3"},
		{"describe tasks eni", events.TaskDetail{Attachments: []events.Attachment{eni("ElasticNetworkInterface", "privateIPv4Address", "10.1.2.4")}}, "10.1.2.4"},
		{"other attachment type ignored", events.TaskDetail{Attachments: []events.Attachment{eni("Service Connect", "privateIPv4Address", "10.9.9.9")}}, ""},
		{"precreated eni without address", events.TaskDetail{Attachments: []events.Attachment{eni("eni", "subnetId", "s")}}, ""},
		{"empty value skipped", events.TaskDetail{Attachments: []events.Attachment{eni("eni", "privateIPv4Address", ""), eni("eni", "privateIPv4Address", "10.1.2.5")}}, "10.1.2.5"},
		{"detail name is case sensitive", events.TaskDetail{Attachments: []events.Attachment{eni("eni", "privateIpv4Address", "10.1.2.6")}}, ""},
		{"container fallback", events.TaskDetail{Containers: []events.Container{{Name: "a"}, {Name: "b", NetworkInterfaces: []events.NetworkInterface{{PrivateIPv4Address: "10.1.2.7"}}}}}, "10.1.2.7"},
		{"attachment wins over container", events.TaskDetail{
			Attachments: []events.Attachment{eni("eni", "privateIPv4Address", "10.1.2.8")},
			Containers:  []events.Container{{NetworkInterfaces: []events.NetworkInterface{{PrivateIPv4Address: "10.1.2.9"}}}},
		}, "10.1.2.8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.detail.PrivateIPv4(); got != tt.want {
				t.Errorf("PrivateIPv4() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTaskStateChangeValidate(t *testing.T) {
	t.Parallel()
	valid := func() events.TaskStateChange {
		return events.TaskStateChange{
			DetailType: events.DetailTypeTaskStateChange,
			Source:     events.SourceDocker,
			Detail:     events.TaskDetail{TaskArn: "c0ffee", LastStatus: "RUNNING"},
		}
	}
	tests := []struct {
		name    string
		mutate  func(*events.TaskStateChange)
		wantErr string
	}{
		{"valid with version 0", func(*events.TaskStateChange) {}, ""},
		{"unknown source is fine", func(e *events.TaskStateChange) { e.Source = "somewhere.else" }, ""},
		{"wrong detail type", func(e *events.TaskStateChange) { e.DetailType = "ECS Service Action" }, "detail-type"},
		{"missing task arn", func(e *events.TaskStateChange) { e.Detail.TaskArn = "" }, "taskArn"},
		{"missing last status", func(e *events.TaskStateChange) { e.Detail.LastStatus = "" }, "lastStatus"},
		{"negative version", func(e *events.TaskStateChange) { e.Detail.Version = -3 }, "version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := valid()
			tt.mutate(&e)
			checkValidateErr(t, e.Validate(), tt.wantErr)
		})
	}
}

func ptr[T any](v T) *T { return &v }
