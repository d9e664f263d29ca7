package ecs

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/workspaced/workspaced/workspace"
)

// Task tags (lost on StopTask) and groups (kept) that identify a workspace.
const (
	TagConversation = "workspaced:conversation"
	TagTenant       = "workspaced:tenant"
	TagPool         = "workspaced:pool"
	TagToken        = "workspaced:token"

	// GroupConversationPrefix + conversation ID is a conversation
	// workspace's task group; GroupPool is a warm-pool workspace's.
	GroupConversationPrefix = "conversation:"
	GroupPool               = "pool"
)

// tagValueRE is the characters ECS accepts in a tag value. The length
// (≤ 256 characters) is checked by its callers: the bounded repetition
// `{0,256}` of this Unicode class compiled to a 5.6 MiB program that every
// process held from start-up, on Docker too.
var tagValueRE = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`)

// ENI attachment types: DescribeTasks says one, events the other.
const (
	attachmentENI      = "ElasticNetworkInterface"
	attachmentENIEvent = "eni"
)

// group returns the task group of spec.
func group(spec workspace.StartSpec) string {
	if spec.Pool {
		return GroupPool
	}
	return GroupConversationPrefix + spec.Conversation
}

// tags returns the task tags of spec.
func tags(spec workspace.StartSpec) []ecstypes.Tag {
	t := []ecstypes.Tag{
		{Key: aws.String(TagToken), Value: aws.String(spec.Token)},
		{Key: aws.String(TagPool), Value: aws.String(strconv.FormatBool(spec.Pool))},
	}
	if spec.Conversation != "" {
		t = append(t, ecstypes.Tag{Key: aws.String(TagConversation), Value: aws.String(spec.Conversation)})
	}
	if spec.Tenant != "" {
		t = append(t, ecstypes.Tag{Key: aws.String(TagTenant), Value: aws.String(spec.Tenant)})
	}
	return t
}

// validateSpec checks what ECS would reject later, as ErrInvalidSpec.
func validateSpec(spec workspace.StartSpec) error {
	if err := workspace.ValidToken(spec.Token); err != nil {
		return err
	}
	if spec.Pool && spec.Conversation != "" {
		return fmt.Errorf("%w: a pool workspace has no conversation (got %q)", workspace.ErrInvalidSpec, spec.Conversation)
	}
	if !spec.Pool && spec.Conversation == "" {
		return fmt.Errorf("%w: a conversation workspace needs a conversation", workspace.ErrInvalidSpec)
	}
	if len(spec.Conversation) > 128 || !tagValueRE.MatchString(spec.Conversation) {
		return fmt.Errorf("%w: conversation %q is not a valid ECS tag value", workspace.ErrInvalidSpec, spec.Conversation)
	}
	if spec.Tenant != "" {
		if err := workspace.ValidTenant(spec.Tenant); err != nil {
			return err
		}
	}
	return nil
}

// taskIP returns the task's private IPv4 from its ENI attachment (either
// spelling of the type) or, failing that, a container's interface.
func taskIP(t ecstypes.Task) string {
	for _, a := range t.Attachments {
		if typ := aws.ToString(a.Type); typ != attachmentENI && typ != attachmentENIEvent {
			continue
		}
		for _, kv := range a.Details {
			if aws.ToString(kv.Name) == "privateIPv4Address" && aws.ToString(kv.Value) != "" {
				return aws.ToString(kv.Value)
			}
		}
	}
	for _, c := range t.Containers {
		for _, ni := range c.NetworkInterfaces {
			if ip := aws.ToString(ni.PrivateIpv4Address); ip != "" {
				return ip
			}
		}
	}
	return ""
}

// status maps a task's lastStatus and desiredStatus: a task ECS is asked to
// stop is reported as STOPPING until its lastStatus says more.
func status(t ecstypes.Task) workspace.Status {
	s := workspace.Status(aws.ToString(t.LastStatus))
	if aws.ToString(t.DesiredStatus) == "STOPPED" && !s.Stopping() {
		return workspace.StatusStopping
	}
	return s
}

// info maps a task to workspace.Info. Tags win; after StopTask (tags gone)
// the group still tells conversation from pool.
func (r *Runtime) info(t ecstypes.Task) workspace.Info {
	in := workspace.Info{
		ID:            aws.ToString(t.TaskArn),
		Status:        status(t),
		StoppedReason: aws.ToString(t.StoppedReason),
	}
	if t.CreatedAt != nil {
		in.CreatedAt = *t.CreatedAt
	}
	g := aws.ToString(t.Group)
	switch {
	case g == GroupPool:
		in.Pool = true
	case len(g) > len(GroupConversationPrefix) && g[:len(GroupConversationPrefix)] == GroupConversationPrefix:
		in.Conversation = g[len(GroupConversationPrefix):]
	}
	for _, tg := range t.Tags {
		v := aws.ToString(tg.Value)
		switch aws.ToString(tg.Key) {
		case TagConversation:
			in.Conversation = v
		case TagTenant:
			in.Tenant = v
		case TagToken:
			in.Token = v
		case TagPool:
			in.Pool = v == "true"
		}
	}
	// A stopped task's address is released and may already belong to
	// another task: never hand it out.
	if ip := taskIP(t); ip != "" && in.Status != workspace.StatusStopped && in.Status != workspace.StatusDeprovisioning {
		in.Endpoint = "http://" + net.JoinHostPort(ip, strconv.Itoa(r.opts.AgentPort))
	}
	for _, c := range t.Containers {
		if aws.ToString(c.Name) == r.opts.AgentContainer && c.ExitCode != nil {
			code := int(*c.ExitCode)
			in.ExitCode = &code
		}
	}
	return in
}

// CapacityError is a RunTask placement failure (failures[].reason
// RESOURCE:CPU, RESOURCE:MEMORY, RESOURCE:ENI, ..., or AGENT): no task was
// started; retry later. It matches workspace.ErrCapacity with errors.Is.
type CapacityError struct {
	Reason string
	Detail string
	// RetryAfter is a backoff hint that grows with consecutive capacity
	// failures of this runtime.
	RetryAfter time.Duration
}

func (e *CapacityError) Error() string {
	s := "ecs run task: " + e.Reason
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s + ": " + workspace.ErrCapacity.Error()
}

// Unwrap makes errors.Is(err, workspace.ErrCapacity) hold.
func (e *CapacityError) Unwrap() error { return workspace.ErrCapacity }

// FailureError is any other RunTask failure (ATTRIBUTE, MISSING, ...).
// Start returns it wrapped in workspace.Terminal.
type FailureError struct {
	Reason string
	Detail string
	Arn    string
}

func (e *FailureError) Error() string {
	s := "ecs run task failed: " + e.Reason
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	if e.Arn != "" {
		s += " on " + e.Arn
	}
	return s
}
