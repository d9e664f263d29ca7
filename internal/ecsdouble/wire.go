package ecsdouble

import (
	"encoding/json"
	"strconv"
	"time"
)

// The JSON shapes of the ECS API (awsJson1_1), written from the API
// reference rather than borrowed from the SDK so that the double checks the
// client's serialisation instead of sharing it. Only the members the double
// models are listed; requests are decoded strictly (an unmodelled member is a
// SerializationException), so a client sending something new is noticed.

type keyValue struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type tag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type capacityProviderStrategyItem struct {
	CapacityProvider string `json:"capacityProvider"`
	Weight           *int32 `json:"weight,omitempty"`
	Base             *int32 `json:"base,omitempty"`
}

type awsVpcConfiguration struct {
	Subnets        []string `json:"subnets"`
	SecurityGroups []string `json:"securityGroups,omitempty"`
	AssignPublicIP string   `json:"assignPublicIp,omitempty"`
}

type networkConfiguration struct {
	AwsvpcConfiguration *awsVpcConfiguration `json:"awsvpcConfiguration,omitempty"`
}

type containerOverride struct {
	Name              string     `json:"name"`
	Command           []string   `json:"command,omitempty"`
	Environment       []keyValue `json:"environment,omitempty"`
	Cpu               *int32     `json:"cpu,omitempty"`
	Memory            *int32     `json:"memory,omitempty"`
	MemoryReservation *int32     `json:"memoryReservation,omitempty"`
}

type taskOverride struct {
	ContainerOverrides []containerOverride `json:"containerOverrides,omitempty"`
	Cpu                string              `json:"cpu,omitempty"`
	Memory             string              `json:"memory,omitempty"`
	ExecutionRoleArn   string              `json:"executionRoleArn,omitempty"`
	TaskRoleArn        string              `json:"taskRoleArn,omitempty"`
}

// runTaskInput is RunTask's request. Its JSON re-encoding without
// ClientToken is what "the same parameters" means for idempotency.
type runTaskInput struct {
	CapacityProviderStrategy []capacityProviderStrategyItem `json:"capacityProviderStrategy,omitempty"`
	ClientToken              string                         `json:"clientToken,omitempty"`
	Cluster                  string                         `json:"cluster,omitempty"`
	Count                    *int32                         `json:"count,omitempty"`
	EnableECSManagedTags     bool                           `json:"enableECSManagedTags,omitempty"`
	EnableExecuteCommand     bool                           `json:"enableExecuteCommand,omitempty"`
	Group                    string                         `json:"group,omitempty"`
	LaunchType               string                         `json:"launchType,omitempty"`
	NetworkConfiguration     *networkConfiguration          `json:"networkConfiguration,omitempty"`
	Overrides                *taskOverride                  `json:"overrides,omitempty"`
	PlacementStrategy        []placementStrategy            `json:"placementStrategy,omitempty"`
	PlatformVersion          string                         `json:"platformVersion,omitempty"`
	PropagateTags            string                         `json:"propagateTags,omitempty"`
	ReferenceID              string                         `json:"referenceId,omitempty"`
	StartedBy                string                         `json:"startedBy,omitempty"`
	Tags                     []tag                          `json:"tags,omitempty"`
	TaskDefinition           string                         `json:"taskDefinition"`
}

// placementStrategy is one entry of RunTask's placementStrategy.
type placementStrategy struct {
	Type  string `json:"type"`
	Field string `json:"field,omitempty"`
}

type failure struct {
	Arn    string `json:"arn,omitempty"`
	Reason string `json:"reason,omitempty"`
	Detail string `json:"detail,omitempty"`
}

type runTaskOutput struct {
	Tasks    []taskJSON `json:"tasks"`
	Failures []failure  `json:"failures"`
}

type stopTaskInput struct {
	Cluster string `json:"cluster,omitempty"`
	Task    string `json:"task"`
	Reason  string `json:"reason,omitempty"`
}

type stopTaskOutput struct {
	Task taskJSON `json:"task"`
}

type describeTasksInput struct {
	Cluster string   `json:"cluster,omitempty"`
	Tasks   []string `json:"tasks"`
	Include []string `json:"include,omitempty"`
}

type describeTasksOutput struct {
	Tasks    []taskJSON `json:"tasks"`
	Failures []failure  `json:"failures"`
}

type listTasksInput struct {
	Cluster           string `json:"cluster,omitempty"`
	ContainerInstance string `json:"containerInstance,omitempty"`
	DesiredStatus     string `json:"desiredStatus,omitempty"`
	Family            string `json:"family,omitempty"`
	LaunchType        string `json:"launchType,omitempty"`
	MaxResults        *int32 `json:"maxResults,omitempty"`
	NextToken         string `json:"nextToken,omitempty"`
	ServiceName       string `json:"serviceName,omitempty"`
	StartedBy         string `json:"startedBy,omitempty"`
}

type listTasksOutput struct {
	TaskArns  []string `json:"taskArns"`
	NextToken string   `json:"nextToken,omitempty"`
}

type tagResourceInput struct {
	ResourceArn string `json:"resourceArn"`
	Tags        []tag  `json:"tags"`
}

// stamp is a timestamp that encodes as epoch seconds (the API) or as an
// ISO-8601 string (EventBridge events), whichever the document needs.
type stamp struct {
	t   time.Time
	iso bool
}

func (s stamp) MarshalJSON() ([]byte, error) {
	if s.iso {
		return json.Marshal(s.t.UTC().Format("2006-01-02T15:04:05.000Z"))
	}
	return []byte(strconv.FormatFloat(float64(s.t.UnixMilli())/1000, 'f', 3, 64)), nil
}

type networkInterfaceJSON struct {
	AttachmentID       string `json:"attachmentId,omitempty"`
	PrivateIpv4Address string `json:"privateIpv4Address,omitempty"`
}

type containerJSON struct {
	ContainerArn      string                 `json:"containerArn"`
	TaskArn           string                 `json:"taskArn"`
	Name              string                 `json:"name"`
	Image             string                 `json:"image"`
	RuntimeID         string                 `json:"runtimeId,omitempty"`
	LastStatus        string                 `json:"lastStatus"`
	ExitCode          *int                   `json:"exitCode,omitempty"`
	Reason            string                 `json:"reason,omitempty"`
	HealthStatus      string                 `json:"healthStatus,omitempty"`
	NetworkInterfaces []networkInterfaceJSON `json:"networkInterfaces"`
	Cpu               string                 `json:"cpu,omitempty"`
	Memory            string                 `json:"memory,omitempty"`
	MemoryReservation string                 `json:"memoryReservation,omitempty"`
}

type attachmentJSON struct {
	ID      string     `json:"id"`
	Type    string     `json:"type"`
	Status  string     `json:"status"`
	Details []keyValue `json:"details"`
}

// taskJSON is an ECS Task as DescribeTasks returns it, and (with iso stamps,
// "eni" attachments and updatedAt) the detail of a task state event.
type taskJSON struct {
	Attachments          []attachmentJSON `json:"attachments"`
	AvailabilityZone     string           `json:"availabilityZone"`
	CapacityProviderName string           `json:"capacityProviderName,omitempty"`
	ClusterArn           string           `json:"clusterArn"`
	ContainerInstanceArn string           `json:"containerInstanceArn,omitempty"`
	Connectivity         string           `json:"connectivity,omitempty"`
	ConnectivityAt       *stamp           `json:"connectivityAt,omitempty"`
	Containers           []containerJSON  `json:"containers"`
	Cpu                  string           `json:"cpu,omitempty"`
	CreatedAt            *stamp           `json:"createdAt,omitempty"`
	DesiredStatus        string           `json:"desiredStatus"`
	EnableExecuteCommand bool             `json:"enableExecuteCommand"`
	ExecutionStoppedAt   *stamp           `json:"executionStoppedAt,omitempty"`
	Group                string           `json:"group,omitempty"`
	HealthStatus         string           `json:"healthStatus,omitempty"`
	LastStatus           string           `json:"lastStatus"`
	LaunchType           string           `json:"launchType,omitempty"`
	Memory               string           `json:"memory,omitempty"`
	Overrides            taskOverride     `json:"overrides"`
	PullStartedAt        *stamp           `json:"pullStartedAt,omitempty"`
	PullStoppedAt        *stamp           `json:"pullStoppedAt,omitempty"`
	StartedAt            *stamp           `json:"startedAt,omitempty"`
	StartedBy            string           `json:"startedBy,omitempty"`
	StopCode             string           `json:"stopCode,omitempty"`
	StoppedAt            *stamp           `json:"stoppedAt,omitempty"`
	StoppedReason        string           `json:"stoppedReason,omitempty"`
	StoppingAt           *stamp           `json:"stoppingAt,omitempty"`
	Tags                 []tag            `json:"tags,omitempty"`
	TaskArn              string           `json:"taskArn"`
	TaskDefinitionArn    string           `json:"taskDefinitionArn"`
	UpdatedAt            *stamp           `json:"updatedAt,omitempty"`
	Version              int64            `json:"version"`
}
