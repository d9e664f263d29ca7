package events

import (
	"fmt"
	"time"
)

// DetailTypeTaskStateChange is the EventBridge detail-type of ECS task state
// events; the Docker runtime uses it too.
const DetailTypeTaskStateChange = "ECS Task State Change"

// Event sources. ECS events come from "aws.ecs"; the Docker runtime's event
// watcher stamps its own source so logs tell them apart. Consumers do not
// branch on the source.
const (
	SourceECS    = "aws.ecs"
	SourceDocker = "workspaced.docker"
)

// TaskStateChange is the EventBridge envelope of an "ECS Task State Change"
// event, restricted to the fields workspaced reads. Unknown fields are
// ignored when decoding: AWS adds fields without notice.
type TaskStateChange struct {
	Version    string     `json:"version"`
	ID         string     `json:"id"`
	DetailType string     `json:"detail-type"`
	Source     string     `json:"source"`
	Account    string     `json:"account,omitempty"`
	Region     string     `json:"region,omitempty"`
	Time       time.Time  `json:"time"`
	Resources  []string   `json:"resources,omitempty"`
	Detail     TaskDetail `json:"detail"`
}

// TaskDetail is the "detail" of a task state event; it resembles an ECS
// DescribeTasks Task. Version increases with every state change of one task:
// an event whose version is not higher than the stored one is stale.
type TaskDetail struct {
	TaskArn           string       `json:"taskArn"`
	ClusterArn        string       `json:"clusterArn,omitempty"`
	TaskDefinitionArn string       `json:"taskDefinitionArn,omitempty"`
	LastStatus        string       `json:"lastStatus"`
	DesiredStatus     string       `json:"desiredStatus,omitempty"`
	Version           int64        `json:"version"`
	Group             string       `json:"group,omitempty"`
	StartedBy         string       `json:"startedBy,omitempty"`
	Attachments       []Attachment `json:"attachments,omitempty"`
	Containers        []Container  `json:"containers,omitempty"`
	StopCode          string       `json:"stopCode,omitempty"`
	StoppedReason     string       `json:"stoppedReason,omitempty"`
	CreatedAt         *time.Time   `json:"createdAt,omitempty"`
	StartedAt         *time.Time   `json:"startedAt,omitempty"`
	StoppingAt        *time.Time   `json:"stoppingAt,omitempty"`
	StoppedAt         *time.Time   `json:"stoppedAt,omitempty"`
	UpdatedAt         *time.Time   `json:"updatedAt,omitempty"`
}

// Attachment is a task attachment; the ENI attachment's details carry the
// task's private IP. Its type is "eni" in events and
// "ElasticNetworkInterface" in DescribeTasks; both are accepted.
type Attachment struct {
	ID      string         `json:"id,omitempty"`
	Type    string         `json:"type"`
	Status  string         `json:"status,omitempty"`
	Details []KeyValuePair `json:"details,omitempty"`
}

// KeyValuePair is one attachment detail.
type KeyValuePair struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Container is one container of the task.
type Container struct {
	Name              string             `json:"name"`
	ContainerArn      string             `json:"containerArn,omitempty"`
	LastStatus        string             `json:"lastStatus,omitempty"`
	ExitCode          *int               `json:"exitCode,omitempty"`
	Reason            string             `json:"reason,omitempty"`
	NetworkInterfaces []NetworkInterface `json:"networkInterfaces,omitempty"`
}

// NetworkInterface is a container's view of the task ENI.
type NetworkInterface struct {
	AttachmentID       string `json:"attachmentId,omitempty"`
	PrivateIPv4Address string `json:"privateIpv4Address,omitempty"`
}

// PrivateIPv4 returns the task's private IPv4 address, from the ENI
// attachment or, failing that, from a container's network interface; "" if
// the event carries none (PROVISIONING events, Docker events).
func (d TaskDetail) PrivateIPv4() string {
	for _, a := range d.Attachments {
		if a.Type != "eni" && a.Type != "ElasticNetworkInterface" {
			continue
		}
		for _, kv := range a.Details {
			if kv.Name == "privateIPv4Address" && kv.Value != "" {
				return kv.Value
			}
		}
	}
	for _, c := range d.Containers {
		for _, ni := range c.NetworkInterfaces {
			if ni.PrivateIPv4Address != "" {
				return ni.PrivateIPv4Address
			}
		}
	}
	return ""
}

// Validate checks the fields a consumer relies on.
func (e TaskStateChange) Validate() error {
	if e.DetailType != DetailTypeTaskStateChange {
		return fmt.Errorf("detail-type %q is not %q", e.DetailType, DetailTypeTaskStateChange)
	}
	if e.Detail.TaskArn == "" {
		return fmt.Errorf("detail.taskArn is required")
	}
	if e.Detail.LastStatus == "" {
		return fmt.Errorf("detail.lastStatus is required")
	}
	if e.Detail.Version < 0 {
		return fmt.Errorf("detail.version %d is negative", e.Detail.Version)
	}
	return nil
}
