package ecsdouble_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/workspaced/workspaced/internal/ecsdouble"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// client returns an SDK ECS client for the double.
func ecsClient(d *ecsdouble.Double) *awsecs.Client {
	return awsecs.NewFromConfig(d.AWSConfig(), func(o *awsecs.Options) { o.BaseEndpoint = aws.String(d.URL) })
}

// runTask is a valid RunTask request for the double's task definition.
func runTask(d *ecsdouble.Double, token, startedBy string) *awsecs.RunTaskInput {
	return &awsecs.RunTaskInput{
		Cluster:        aws.String(d.ClusterName),
		TaskDefinition: aws.String(d.Family),
		ClientToken:    aws.String(token),
		StartedBy:      aws.String(startedBy),
		Group:          aws.String("conversation:c1"),
		LaunchType:     ecstypes.LaunchTypeEc2,
		NetworkConfiguration: &ecstypes.NetworkConfiguration{AwsvpcConfiguration: &ecstypes.AwsVpcConfiguration{
			Subnets:        []string{"subnet-0abc"},
			SecurityGroups: []string{"sg-0abc"},
			AssignPublicIp: ecstypes.AssignPublicIpDisabled,
		}},
		Tags: []ecstypes.Tag{{Key: aws.String("workspaced:token"), Value: aws.String(token)}},
	}
}

// startTask runs a task and returns its ARN.
func startTask(t *testing.T, d *ecsdouble.Double, token, startedBy string) string {
	t.Helper()
	out, err := ecsClient(d).RunTask(testCtx(t), runTask(d, token, startedBy))
	if err != nil {
		t.Fatalf("RunTask: %v", err)
	}
	if len(out.Tasks) != 1 {
		t.Fatalf("RunTask: %d tasks, failures %+v", len(out.Tasks), out.Failures)
	}
	return aws.ToString(out.Tasks[0].TaskArn)
}
