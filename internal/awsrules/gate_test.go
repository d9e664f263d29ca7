package awsrules_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go"

	"github.com/workspaced/workspaced/events/bus/bustest"
	"github.com/workspaced/workspaced/internal/awsrules"
	"github.com/workspaced/workspaced/internal/iampolicy"
)

const (
	region  = "us-east-1"
	account = "000000000000"
)

// The backend role's policy, rendered from Terraform with this test's
// queues and bucket, decides what the backend's key may do on the
// emulator: its queues and bucket, nothing else; a denied call fails as
// SQS and S3 fail it.
func TestGateEnforcesTheBackendPolicy(t *testing.T) {
	emu := bustest.StartEmulator(t)
	prefix := bustest.UniquePrefix(t)
	q := func(name string) string { return "arn:aws:sqs:" + region + ":" + account + ":" + prefix + name }
	bucket := strings.TrimSuffix(prefix, "-") + "-files"
	backend, err := awsrules.Backend(awsrules.Env{
		Region: region, Account: account, Family: "workspace-agent",
		Cluster:          "arn:aws:ecs:" + region + ":" + account + ":cluster/gate",
		CommandQueues:    []string{q("requested")},
		TaskEventsQueue:  q("task-events"),
		DeadLetterQueues: []string{q("requested-dlq")},
		FilesBucket:      "arn:aws:s3:::" + bucket,
	})
	if err != nil {
		t.Fatal(err)
	}
	gate := awsrules.StartGate(t, emu.URL, region, account, map[string]iampolicy.Identity{
		"admin":   {ARN: "arn:aws:iam::" + account + ":role/test-admin", Policies: []iampolicy.Named{{Name: "admin", Policy: iampolicy.AllowAll}}},
		"backend": {ARN: "arn:aws:sts::" + account + ":assumed-role/wsd-test-backend-task/t", Policies: []iampolicy.Named{backend}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin := clients(emu, gate, "admin")
	for _, name := range []string{"requested", "requested-dlq", "other"} {
		if _, err := admin.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(prefix + name)}); err != nil {
			t.Fatalf("admin CreateQueue: %v", err)
		}
	}
	if _, err := admin.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("admin CreateBucket: %v", err)
	}
	if _, err := admin.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket + "-other")}); err != nil {
		t.Fatalf("admin CreateBucket: %v", err)
	}

	be := clients(emu, gate, "backend")
	url := func(name string) *string {
		out, err := be.sqs.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(prefix + name)})
		if name == "other" {
			wantDenied(t, "GetQueueUrl of another queue", err, "sqs:GetQueueUrl")
			u, err := admin.sqs.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(prefix + name)})
			if err != nil {
				t.Fatal(err)
			}
			return u.QueueUrl
		}
		if err != nil {
			t.Fatalf("GetQueueUrl %s: %v", name, err)
		}
		return out.QueueUrl
	}
	if _, err := be.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: url("requested"), MessageBody: aws.String("{}")}); err != nil {
		t.Fatalf("SendMessage to its command queue: %v", err)
	}
	got, err := be.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: url("requested"), WaitTimeSeconds: 1})
	if err != nil || len(got.Messages) != 1 {
		t.Fatalf("ReceiveMessage: %v, %d messages", err, len(got.Messages))
	}
	if _, err := be.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: url("requested"), ReceiptHandle: got.Messages[0].ReceiptHandle}); err != nil {
		t.Fatalf("DeleteMessage: %v", err)
	}
	if _, err := be.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: url("requested-dlq"), MessageBody: aws.String("{}")}); err != nil {
		t.Fatalf("SendMessage to a DLQ (poison): %v", err)
	}
	if _, err := be.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: url("requested-dlq")}); err == nil {
		t.Error("ReceiveMessage on a DLQ allowed; the policy grants the DLQs only SendMessage")
	}
	_, err = be.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: url("other"), MessageBody: aws.String("{}")})
	wantDenied(t, "SendMessage to another queue", err, "sqs:SendMessage")
	_, err = be.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(prefix + "new")})
	wantDenied(t, "CreateQueue", err, "sqs:CreateQueue")

	if _, err := be.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("workspaces/acme/c1/snap"), Body: strings.NewReader("x")}); err != nil {
		t.Fatalf("PutObject in its bucket: %v", err)
	}
	if _, err := be.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("workspaces/acme/c1/snap")}); err != nil {
		t.Fatalf("GetObject in its bucket: %v", err)
	}
	if _, err := be.s3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("workspaces/")}); err != nil {
		t.Fatalf("ListObjectsV2 of its bucket: %v", err)
	}
	_, err = be.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket + "-other"), Key: aws.String("k"), Body: strings.NewReader("x")})
	wantDenied(t, "PutObject in another bucket", err, "s3:PutObject")
	if len(gate.Denied()) < 4 {
		t.Fatalf("gate denied %v", gate.Denied())
	}
}

type awsClients struct {
	sqs *sqs.Client
	s3  *s3.Client
}

func clients(emu *bustest.Emulator, gate *awsrules.Gate, key string) awsClients {
	cfg := emu.Config.Copy()
	cfg.Credentials = credentials.NewStaticCredentialsProvider(key, "secret-"+key, "")
	return awsClients{
		sqs: sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(gate.URL) }),
		s3: s3.NewFromConfig(cfg, func(o *s3.Options) {
			o.BaseEndpoint = aws.String(gate.URL)
			o.UsePathStyle = true
		}),
	}
}

func wantDenied(t *testing.T, what string, err error, action string) {
	t.Helper()
	var api smithy.APIError
	if !errors.As(err, &api) || !strings.Contains(api.ErrorCode(), "AccessDenied") {
		t.Errorf("%s: %v, want AccessDenied", what, err)
		return
	}
	if !strings.Contains(api.ErrorMessage(), "is not authorized to perform: "+action) {
		t.Errorf("%s: message %q does not name %s", what, api.ErrorMessage(), action)
	}
}
