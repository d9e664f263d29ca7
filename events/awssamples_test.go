package events_test

import (
	"slices"
	"testing"
	"time"

	"github.com/workspaced/workspaced/events"
)

// TestDecodeAWSDocumentedSamples decodes the "ECS Task State Change"
// samples of the ECS developer guide, copied verbatim into testdata/aws
// (testdata/aws/README.md names the pages), and checks every field
// workspaced reads from an event: the envelope, the task's identity and
// states, its version, group and startedBy, the ENI's private address, the
// containers' exit codes and the timestamps.
func TestDecodeAWSDocumentedSamples(t *testing.T) {
	t.Parallel()
	type container struct {
		name       string
		lastStatus string
		exitCode   *int
	}
	tests := []struct {
		file          string
		id            string
		account       string
		region        string
		time          time.Time
		resources     []string
		taskArn       string
		clusterArn    string
		taskDefArn    string
		lastStatus    string
		desiredStatus string
		version       int64
		group         string
		startedBy     string
		ip            string
		attachmentIDs []string
		containers    []container
		createdAt     time.Time
		startedAt     time.Time
		updatedAt     time.Time
	}{
		{
			file:          "ecs-task-state-change-fargate-running.json",
			id:            "3317b2af-7005-947d-b652-f55e762e571a",
			account:       "111122223333",
			region:        "us-west-2",
			time:          time.Date(2020, 1, 23, 17, 57, 58, 0, time.UTC),
			resources:     []string{"arn:aws:ecs:us-west-2:111122223333:task/FargateCluster/c13b4cb40f1f4fe4a2971f76ae5a47ad"},
			taskArn:       "arn:aws:ecs:us-west-2:111122223333:task/FargateCluster/c13b4cb40f1f4fe4a2971f76ae5a47ad",
			clusterArn:    "arn:aws:ecs:us-west-2:111122223333:cluster/FargateCluster",
			taskDefArn:    "arn:aws:ecs:us-west-2:111122223333:task-definition/sample-fargate:1",
			lastStatus:    "RUNNING",
			desiredStatus: "RUNNING",
			version:       4,
			group:         "family:sample-fargate",
			ip:            "10.0.0.139",
			attachmentIDs: []string{"1789bcae-ddfb-4d10-8ebe-8ac87ddba5b8"},
			containers:    []container{{name: "FargateApp", lastStatus: "RUNNING"}},
			createdAt:     time.Date(2020, 1, 23, 17, 57, 34, 402e6, time.UTC),
			startedAt:     time.Date(2020, 1, 23, 17, 57, 58, 103e6, time.UTC),
			updatedAt:     time.Date(2020, 1, 23, 17, 57, 58, 103e6, time.UTC),
		},
		{
			file:          "ecs-task-state-change-ec2-2016.json",
			id:            "9bcdac79-b31f-4d3d-9410-fbd727c29fab",
			account:       "111122223333",
			region:        "us-east-1",
			time:          time.Date(2016, 12, 6, 16, 41, 6, 0, time.UTC),
			resources:     []string{"arn:aws:ecs:us-east-1:111122223333:task/b99d40b3-5176-4f71-9a52-9dbd6f1cebef"},
			taskArn:       "arn:aws:ecs:us-east-1:111122223333:task/b99d40b3-5176-4f71-9a52-9dbd6f1cebef",
			clusterArn:    "arn:aws:ecs:us-east-1:111122223333:cluster/default",
			taskDefArn:    "arn:aws:ecs:us-east-1:111122223333:task-definition/xray:2",
			lastStatus:    "RUNNING",
			desiredStatus: "RUNNING",
			version:       4,
			group:         "task-group",
			startedBy:     "ecs-svc/9223370556150183303",
			ip:            "", // an EC2 task of 2016: bridge networking, no ENI
			containers:    []container{{name: "xray", lastStatus: "STOPPED", exitCode: ptr(0)}},
			createdAt:     time.Date(2016, 12, 6, 16, 41, 5, 702e6, time.UTC),
			startedAt:     time.Date(2016, 12, 6, 16, 41, 6, 800e6, time.UTC),
			updatedAt:     time.Date(2016, 12, 6, 16, 41, 6, 975e6, time.UTC),
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			e, err := events.DecodeTaskStateChange(readSample(t, "aws", tt.file))
			if err != nil {
				t.Fatalf("DecodeTaskStateChange: %v", err)
			}
			if e.Version != "0" || e.ID != tt.id || e.DetailType != events.DetailTypeTaskStateChange || e.Source != events.SourceECS ||
				e.Account != tt.account || e.Region != tt.region || !e.Time.Equal(tt.time) || !slices.Equal(e.Resources, tt.resources) {
				t.Errorf("envelope = %+v", e)
			}
			d := e.Detail
			if d.TaskArn != tt.taskArn || d.ClusterArn != tt.clusterArn || d.TaskDefinitionArn != tt.taskDefArn {
				t.Errorf("task %q cluster %q definition %q", d.TaskArn, d.ClusterArn, d.TaskDefinitionArn)
			}
			if d.LastStatus != tt.lastStatus || d.DesiredStatus != tt.desiredStatus || d.Version != tt.version {
				t.Errorf("status %s/%s version %d, want %s/%s %d", d.LastStatus, d.DesiredStatus, d.Version, tt.lastStatus, tt.desiredStatus, tt.version)
			}
			if d.Group != tt.group || d.StartedBy != tt.startedBy {
				t.Errorf("group %q startedBy %q, want %q %q", d.Group, d.StartedBy, tt.group, tt.startedBy)
			}
			if got := d.PrivateIPv4(); got != tt.ip {
				t.Errorf("PrivateIPv4() = %q, want %q", got, tt.ip)
			}
			var attIDs []string
			for _, a := range d.Attachments {
				attIDs = append(attIDs, a.ID)
				if a.Type != "eni" {
					t.Errorf("attachment type %q, want eni (events say eni)", a.Type)
				}
			}
			if !slices.Equal(attIDs, tt.attachmentIDs) {
				t.Errorf("attachments %v, want %v", attIDs, tt.attachmentIDs)
			}
			if len(d.Containers) != len(tt.containers) {
				t.Fatalf("containers = %+v, want %d", d.Containers, len(tt.containers))
			}
			for i, want := range tt.containers {
				c := d.Containers[i]
				if c.Name != want.name || c.LastStatus != want.lastStatus || (c.ExitCode == nil) != (want.exitCode == nil) ||
					(want.exitCode != nil && *c.ExitCode != *want.exitCode) {
					t.Errorf("container %d = %+v, want %+v", i, c, want)
				}
				for _, ni := range c.NetworkInterfaces {
					if ni.PrivateIPv4Address != tt.ip || !slices.Contains(tt.attachmentIDs, ni.AttachmentID) {
						t.Errorf("container %s interface %+v, want %s on one of %v", c.Name, ni, tt.ip, tt.attachmentIDs)
					}
				}
			}
			for _, ts := range []struct {
				name string
				got  *time.Time
				want time.Time
			}{{"createdAt", d.CreatedAt, tt.createdAt}, {"startedAt", d.StartedAt, tt.startedAt}, {"updatedAt", d.UpdatedAt, tt.updatedAt}} {
				if ts.got == nil || !ts.got.Equal(ts.want) {
					t.Errorf("%s = %v, want %v", ts.name, ts.got, ts.want)
				}
			}
			if d.StoppedAt != nil || d.StopCode != "" || d.StoppedReason != "" {
				t.Errorf("a running task with stop fields: %v %q %q", d.StoppedAt, d.StopCode, d.StoppedReason)
			}
		})
	}
}
