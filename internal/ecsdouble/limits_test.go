package ecsdouble_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/workspaced/workspaced/internal/ecsdouble"
)

func tagList(n int, prefix string) []ecstypes.Tag {
	out := make([]ecstypes.Tag, n)
	for i := range out {
		out[i] = ecstypes.Tag{Key: aws.String(fmt.Sprintf("%s%02d", prefix, i)), Value: aws.String("v")}
	}
	return out
}

func oneTag(k, v string) []ecstypes.Tag {
	return []ecstypes.Tag{{Key: aws.String(k), Value: aws.String(v)}}
}

// TestRunTaskLimits sends RunTask at and just over each limit ECS
// documents (API reference: RunTask clientToken "Up to 64 characters ...
// in the range of 33-126", startedBy "Up to 128 letters ..., numbers,
// hyphens (-), forward slash (/), and underscores (_)", and the Tag
// restrictions: at most 50 per resource, keys ≤ 128 and values ≤ 256
// Unicode characters of letters, numbers, spaces and + - = . _ : / @, no
// aws: prefix on keys or values) through the real SDK client. At the
// limit the task starts; over it ECS answers InvalidParameterException
// and starts nothing.
func TestRunTaskLimits(t *testing.T) {
	t.Parallel()
	d := ecsdouble.Start(t, ecsdouble.Options{})
	c := ecsClient(d)
	tests := []struct {
		name string
		mod  func(*awsecs.RunTaskInput)
		code string // "" accepted
	}{
		{"50 tags", func(in *awsecs.RunTaskInput) { in.Tags = tagList(50, "k") }, ""},
		{"51 tags", func(in *awsecs.RunTaskInput) { in.Tags = tagList(51, "k") }, "InvalidParameterException"},
		{"key of 128", func(in *awsecs.RunTaskInput) { in.Tags = oneTag(strings.Repeat("k", 128), "v") }, ""},
		{"key of 128 runes, 256 bytes", func(in *awsecs.RunTaskInput) { in.Tags = oneTag(strings.Repeat("é", 128), "v") }, ""},
		{"key of 129", func(in *awsecs.RunTaskInput) { in.Tags = oneTag(strings.Repeat("k", 129), "v") }, "InvalidParameterException"},
		{"empty key", func(in *awsecs.RunTaskInput) { in.Tags = oneTag("", "v") }, "InvalidParameterException"},
		{"value of 256", func(in *awsecs.RunTaskInput) { in.Tags = oneTag("k", strings.Repeat("v", 256)) }, ""},
		{"value of 257", func(in *awsecs.RunTaskInput) { in.Tags = oneTag("k", strings.Repeat("v", 257)) }, "InvalidParameterException"},
		{"empty value", func(in *awsecs.RunTaskInput) { in.Tags = oneTag("k", "") }, ""},
		{"every allowed punctuation", func(in *awsecs.RunTaskInput) { in.Tags = oneTag("a+-=._:/@ b", "x+-=._:/@ y") }, ""},
		{"key with !", func(in *awsecs.RunTaskInput) { in.Tags = oneTag("a!b", "v") }, "InvalidParameterException"},
		{"value with #", func(in *awsecs.RunTaskInput) { in.Tags = oneTag("k", "x#y") }, "InvalidParameterException"},
		{"aws: key", func(in *awsecs.RunTaskInput) { in.Tags = oneTag("aws:x", "v") }, "InvalidParameterException"},
		{"AwS: key", func(in *awsecs.RunTaskInput) { in.Tags = oneTag("AwS:x", "v") }, "InvalidParameterException"},
		{"aws: value", func(in *awsecs.RunTaskInput) { in.Tags = oneTag("k", "aws:v") }, "InvalidParameterException"},
		{"duplicate key", func(in *awsecs.RunTaskInput) {
			in.Tags = append(oneTag("k", "a"), oneTag("k", "b")...)
		}, "InvalidParameterException"},
		{"startedBy of 128", func(in *awsecs.RunTaskInput) { in.StartedBy = aws.String(strings.Repeat("s", 128)) }, ""},
		{"startedBy of 129", func(in *awsecs.RunTaskInput) { in.StartedBy = aws.String(strings.Repeat("s", 129)) }, "InvalidParameterException"},
		{"startedBy with / - _", func(in *awsecs.RunTaskInput) { in.StartedBy = aws.String("ws/prod-1_a") }, ""},
		{"startedBy with a colon", func(in *awsecs.RunTaskInput) { in.StartedBy = aws.String("a:b") }, "InvalidParameterException"},
		{"clientToken of 64", func(in *awsecs.RunTaskInput) { in.ClientToken = aws.String(strings.Repeat("t", 64)) }, ""},
		{"clientToken of 65", func(in *awsecs.RunTaskInput) { in.ClientToken = aws.String(strings.Repeat("u", 65)) }, "InvalidParameterException"},
		{"clientToken of printable ASCII", func(in *awsecs.RunTaskInput) { in.ClientToken = aws.String("!~{}|$") }, ""},
		{"clientToken with a space", func(in *awsecs.RunTaskInput) { in.ClientToken = aws.String("a b") }, "InvalidParameterException"},
		{"clientToken not ASCII", func(in *awsecs.RunTaskInput) { in.ClientToken = aws.String("é") }, "InvalidParameterException"},
	}
	accepted := 0
	for i, tc := range tests {
		in := runTask(d, fmt.Sprintf("limits-%02d", i), "workspaced")
		in.Tags = nil
		tc.mod(in)
		out, err := c.RunTask(testCtx(t), in)
		if got := apiCode(err); got != tc.code {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.code)
			continue
		}
		if tc.code == "" {
			accepted++
			if len(out.Tasks) != 1 {
				t.Errorf("%s: accepted without a task: %+v", tc.name, out.Failures)
			}
		}
	}
	if n := len(d.Tasks()); n != accepted {
		t.Errorf("%d tasks for %d accepted requests: a rejected RunTask started one", n, accepted)
	}
}

// TestTagResourceLimits tags a running task as RecordClaim does, up to
// and over the limits: the 50 tags count what the task has plus what is
// added (aws: tags excepted), a key already present is replaced rather
// than added, and a rejected call changes nothing.
func TestTagResourceLimits(t *testing.T) {
	t.Parallel()
	d := ecsdouble.Start(t, ecsdouble.Options{})
	c := ecsClient(d)
	ctx := testCtx(t)
	in := runTask(d, "tagres", "workspaced")
	in.Tags = tagList(10, "run") // plus aws:ecs:clusterName, which does not count
	in.EnableECSManagedTags = true
	out, err := c.RunTask(ctx, in)
	if err != nil || len(out.Tasks) != 1 {
		t.Fatalf("RunTask: %v %+v", err, out)
	}
	arn := aws.ToString(out.Tasks[0].TaskArn)
	tests := []struct {
		name  string
		tags  []ecstypes.Tag
		code  string
		total int // user tags after the call
	}{
		{"key of 129", oneTag(strings.Repeat("k", 129), "v"), "InvalidParameterException", 10},
		{"value of 257", oneTag("k", strings.Repeat("v", 257)), "InvalidParameterException", 10},
		{"aws: key", oneTag("aws:owner", "v"), "InvalidParameterException", 10},
		{"value with a semicolon", oneTag("workspaced:owner", "a;b"), "InvalidParameterException", 10},
		{"up to 50", tagList(40, "claim"), "", 50},
		{"replace at 50", append(oneTag("run00", strings.Repeat("v", 256)), oneTag("claim39", "w")...), "", 50},
		{"a 51st", oneTag("one-more", "v"), "InvalidParameterException", 50},
	}
	for _, tc := range tests {
		_, err := c.TagResource(ctx, &awsecs.TagResourceInput{ResourceArn: aws.String(arn), Tags: tc.tags})
		if got := apiCode(err); got != tc.code {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.code)
		}
		snap, _ := d.Task(arn)
		user := 0
		for k := range snap.Tags {
			if !strings.HasPrefix(k, "aws:") {
				user++
			}
		}
		if user != tc.total {
			t.Errorf("%s: the task has %d tags, want %d", tc.name, user, tc.total)
		}
	}
	if snap, _ := d.Task(arn); snap.Tags["run00"] != strings.Repeat("v", 256) || snap.Tags["aws:ecs:clusterName"] != d.ClusterName {
		t.Errorf("tags after the calls: %v", snap.Tags)
	}
}

// TestRunTaskPlacementFailures: what ECS answers when it cannot place a
// task — HTTP 200 with failures[] (reason, the container instance's ARN)
// and no task, so no event either (API failure reasons,
// https://docs.aws.amazon.com/AmazonECS/latest/developerguide/api_failures_messages.html).
func TestRunTaskPlacementFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		opts   ecsdouble.Options
		setup  func(*ecsdouble.Double)
		reason string
	}{
		{"memory exhausted", ecsdouble.Options{Capacity: 1}, nil, "RESOURCE:MEMORY"},
		{"cpu, as configured", ecsdouble.Options{Capacity: 1, CapacityReason: "RESOURCE:CPU"}, nil, "RESOURCE:CPU"},
		{"no ENI slot left", ecsdouble.Options{ENIs: 1}, nil, "RESOURCE:ENI"},
		{"agent disconnected", ecsdouble.Options{}, func(d *ecsdouble.Double) { d.SetAgentConnected(false) }, "AGENT"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := ecsdouble.Start(t, tc.opts)
			c := ecsClient(d)
			ctx := testCtx(t)
			if tc.setup != nil {
				tc.setup(d)
			} else {
				startTask(t, d, "first", "workspaced") // takes the one slot
			}
			before := len(d.Events())
			out, err := c.RunTask(ctx, runTask(d, "placed", "workspaced"))
			if err != nil || len(out.Tasks) != 0 || len(out.Failures) != 1 {
				t.Fatalf("RunTask: %v %+v", err, out)
			}
			if f := out.Failures[0]; aws.ToString(f.Reason) != tc.reason || aws.ToString(f.Arn) != d.ContainerInstanceArn {
				t.Errorf("failure %s %s, want %s on %s", aws.ToString(f.Reason), aws.ToString(f.Arn), tc.reason, d.ContainerInstanceArn)
			}
			if n := len(d.Events()); n != before {
				t.Errorf("a failed RunTask emitted %d events", n-before)
			}
			if tc.setup != nil { // the agent reconnects: the same token places
				d.SetAgentConnected(true)
				startTask(t, d, "placed", "workspaced")
			}
		})
	}
}

// TestThrottlingErrorShape: a throttled call is answered as ECS answers it
// (HTTP 400, __type ThrottlingException, message "Rate exceeded"), which
// the SDK classifies as a throttle and its standard retryer retries.
func TestThrottlingErrorShape(t *testing.T) {
	t.Parallel()
	d := ecsdouble.Start(t, ecsdouble.Options{})
	ctx := testCtx(t)
	tests := []struct {
		name     string
		attempts int
		throttle int
		ok       bool
	}{
		{"no retries", 1, 1, false},
		{"retried through", 3, 2, true},
	}
	for _, tc := range tests {
		c := awsecs.NewFromConfig(d.AWSConfig(), func(o *awsecs.Options) {
			o.BaseEndpoint = aws.String(d.URL)
			o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) { so.MaxAttempts = tc.attempts })
		})
		d.ThrottleNext(tc.throttle)
		before := d.Throttled("ListTasks")
		_, err := c.ListTasks(ctx, &awsecs.ListTasksInput{Cluster: aws.String(d.ClusterName)})
		if got := d.Throttled("ListTasks") - before; got != tc.throttle {
			t.Errorf("%s: %d throttled, want %d", tc.name, got, tc.throttle)
		}
		if tc.ok {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		var re *awshttp.ResponseError
		if apiCode(err) != "ThrottlingException" || !strings.Contains(err.Error(), "Rate exceeded") ||
			retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err) != aws.TrueTernary {
			t.Errorf("%s: %v, want a ThrottlingException the SDK classifies as a throttle", tc.name, err)
		}
		if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusBadRequest {
			t.Errorf("%s: HTTP status of %v, want 400", tc.name, err)
		}
	}
}
