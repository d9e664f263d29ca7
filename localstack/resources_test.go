package localstack_test

import (
	"context"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

func sqsClient(endpoint string) *sqs.Client {
	return sqs.NewFromConfig(awsConfig(), func(o *sqs.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

func queueAttributes(ctx context.Context, t testing.TB, c *sqs.Client, name string) map[string]string {
	t.Helper()
	u, err := c.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(name)})
	if err != nil {
		t.Fatalf("queue %s: %v", name, err)
	}
	out, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       u.QueueUrl,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll},
	})
	if err != nil {
		t.Fatalf("attributes of %s: %v", name, err)
	}
	return out.Attributes
}

func atoi(t testing.TB, what, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("%s = %q: %v", what, s, err)
	}
	return n
}

// TestInitScriptCreatesTerraformResources runs the script twice (it must be
// idempotent) and checks queues, dead-letter queues, redrive policies, the
// rule and the bucket against deploy/names.json and the Terraform module.
func TestInitScriptCreatesTerraformResources(t *testing.T) {
	t.Parallel()
	n := loadNames(t)
	tf := terraformMessaging(t)
	d := sharedDeployment(t)
	again := runInitScript2(t, d)
	if !strings.Contains(again, "workspaced resources ready") {
		t.Fatalf("second run did not finish:\n%s", again)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := sqsClient(d.endpoint)

	for _, q := range []struct {
		name       string
		visibility int
	}{
		{n.Queues.WorkspaceRequested, tf.commandVisibility},
		{n.Queues.WorkspaceReleased, tf.commandVisibility},
		{n.Queues.TaskEvents, tf.taskEventsVisibility},
	} {
		t.Run(q.name, func(t *testing.T) {
			name := d.queuePrefix + q.name
			attrs := queueAttributes(ctx, t, c, name)
			dlq := queueAttributes(ctx, t, c, name+n.DeadLetterSuffix)
			if got := atoi(t, "VisibilityTimeout", attrs["VisibilityTimeout"]); got != q.visibility {
				t.Errorf("VisibilityTimeout %d, Terraform has %d", got, q.visibility)
			}
			if got := atoi(t, "MessageRetentionPeriod", attrs["MessageRetentionPeriod"]); got != tf.queueRetention {
				t.Errorf("MessageRetentionPeriod %d, Terraform has %d", got, tf.queueRetention)
			}
			if got := atoi(t, "dlq MessageRetentionPeriod", dlq["MessageRetentionPeriod"]); got != tf.dlqRetention {
				t.Errorf("DLQ MessageRetentionPeriod %d, Terraform has %d", got, tf.dlqRetention)
			}
			var redrive struct {
				DeadLetterTargetArn string `json:"deadLetterTargetArn"`
				MaxReceiveCount     any    `json:"maxReceiveCount"`
			}
			if err := json.Unmarshal([]byte(attrs["RedrivePolicy"]), &redrive); err != nil {
				t.Fatalf("RedrivePolicy %q: %v", attrs["RedrivePolicy"], err)
			}
			if redrive.DeadLetterTargetArn != dlq["QueueArn"] {
				t.Errorf("redrive target %q, want the DLQ %q", redrive.DeadLetterTargetArn, dlq["QueueArn"])
			}
			if got := atoi(t, "maxReceiveCount", strings.Trim(jsonString(redrive.MaxReceiveCount), `"`)); got != tf.maxReceiveCount {
				t.Errorf("maxReceiveCount %d, Terraform has %d", got, tf.maxReceiveCount)
			}
		})
	}

	t.Run("rule", func(t *testing.T) {
		eb := eventbridge.NewFromConfig(awsConfig(), func(o *eventbridge.Options) { o.BaseEndpoint = aws.String(d.endpoint) })
		rule := d.namePrefix + "-task-state-change"
		out, err := eb.DescribeRule(ctx, &eventbridge.DescribeRuleInput{Name: aws.String(rule)})
		if err != nil {
			t.Fatalf("describe rule %s: %v", rule, err)
		}
		var got, want any
		if err := json.Unmarshal([]byte(aws.ToString(out.EventPattern)), &got); err != nil {
			t.Fatalf("rule pattern: %v", err)
		}
		if err := json.Unmarshal([]byte(renderPattern(t, d.clusterARN, n.StartedBy)), &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("rule pattern %v, want the Terraform template's %v", got, want)
		}
		targets, err := eb.ListTargetsByRule(ctx, &eventbridge.ListTargetsByRuleInput{Rule: aws.String(rule)})
		if err != nil {
			t.Fatalf("targets of %s: %v", rule, err)
		}
		events := queueAttributes(ctx, t, c, d.queuePrefix+n.Queues.TaskEvents)
		if len(targets.Targets) != 1 || aws.ToString(targets.Targets[0].Arn) != events["QueueArn"] {
			t.Errorf("targets %+v, want only %s", targets.Targets, events["QueueArn"])
		}
		if !strings.Contains(events["Policy"], "events.amazonaws.com") || !strings.Contains(events["Policy"], aws.ToString(out.Arn)) {
			t.Errorf("task-events queue policy %q does not admit the rule", events["Policy"])
		}
	})

	t.Run("bucket", func(t *testing.T) {
		s := s3.NewFromConfig(awsConfig(), func(o *s3.Options) {
			o.BaseEndpoint = aws.String(d.endpoint)
			o.UsePathStyle = true
		})
		bucket := d.namePrefix + "-000000000000-" + n.WorkspaceFilesBucketSuffix
		if _, err := s.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)}); err != nil {
			t.Fatalf("bucket %s: %v", bucket, err)
		}
		v, err := s.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String(bucket)})
		if err != nil {
			t.Fatalf("versioning of %s: %v", bucket, err)
		}
		if v.Status != "Enabled" {
			t.Errorf("versioning %q, want Enabled", v.Status)
		}
	})
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
