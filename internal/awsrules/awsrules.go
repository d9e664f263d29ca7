// Package awsrules binds the Terraform code's IAM policies to a test
// environment, for the doubles that enforce them: the roles' policies are
// rendered from terraform/ (internal/tfpolicy) with the module inputs set
// to the environment's cluster, queues and bucket, so the tests evaluate
// each call against the policy as written, never a copy.
package awsrules

import (
	"fmt"
	"path/filepath"

	"github.com/zclconf/go-cty/cty"

	"github.com/workspaced/workspaced/internal/ecsdouble"
	"github.com/workspaced/workspaced/internal/iampolicy"
	"github.com/workspaced/workspaced/internal/tfpolicy"
)

// Env is a test environment as the security module's inputs see it.
type Env struct {
	Region, Account string
	// Cluster is the ECS cluster ARN; Family the workspace task family.
	Cluster, Family string
	// ExecutionRoleArn is the workspace task definition's execution role
	// (the only role the backend may pass).
	ExecutionRoleArn string
	// CommandQueues, TaskEventsQueue and DeadLetterQueues are queue ARNs.
	CommandQueues    []string
	TaskEventsQueue  string
	DeadLetterQueues []string
	// FilesBucket is the workspace files bucket's ARN.
	FilesBucket string
}

// Backend returns the backend task role's identity policy
// (terraform/modules/security, data "aws_iam_policy_document" "backend")
// bound to env.
func Backend(env Env) (iampolicy.Named, error) {
	m, err := security(env)
	if err != nil {
		return iampolicy.Named{}, err
	}
	return m.Policy("backend")
}

// RoleARN is the ARN a role of the stack has in env (its name as the
// security module builds it from name_prefix).
func RoleARN(env Env, role string) string {
	return fmt.Sprintf("arn:aws:iam::%s:role/%s", env.Account, role)
}

func security(env Env) (*tfpolicy.Module, error) {
	root, err := ecsdouble.RepoRoot()
	if err != nil {
		return nil, err
	}
	list := func(arns []string) cty.Value {
		if len(arns) == 0 {
			return cty.ListValEmpty(cty.String)
		}
		vals := make([]cty.Value, len(arns))
		for i, a := range arns {
			vals[i] = cty.StringVal(a)
		}
		return cty.ListVal(vals)
	}
	str := func(s, fallback string) cty.Value {
		if s == "" {
			s = fallback
		}
		return cty.StringVal(s)
	}
	arn := func(service, resource string) string {
		return fmt.Sprintf("arn:aws:%s:%s:%s:%s", service, env.Region, env.Account, resource)
	}
	vars := map[string]cty.Value{
		"name_prefix":                 cty.StringVal("wsd-test"),
		"aws_region":                  cty.StringVal(env.Region),
		"cluster_arn":                 cty.StringVal(env.Cluster),
		"workspace_task_family":       cty.StringVal(env.Family),
		"command_queue_arns":          list(env.CommandQueues),
		"task_events_queue_arn":       str(env.TaskEventsQueue, arn("sqs", "unused-task-events")),
		"dead_letter_queue_arns":      list(env.DeadLetterQueues),
		"workspace_files_bucket_arn":  str(env.FilesBucket, "arn:aws:s3:::unused-files"),
		"workspace_files_kms_key_arn": cty.StringVal(arn("kms", "key/files")),
		"metrics_log_group_arn":       cty.StringVal(arn("logs", "log-group:/wsd-test/metrics")),
		"ecr_repository_arns":         list([]string{arn("ecr", "repository/wsd-test")}),
		"log_group_arns":              list([]string{arn("logs", "log-group:/wsd-test")}),
		"ssm_parameter_prefix":        cty.StringVal("/wsd-test"),
	}
	refs := map[string]string{}
	if env.ExecutionRoleArn != "" {
		refs["aws_iam_role.execution.arn"] = env.ExecutionRoleArn
	}
	return tfpolicy.Load(filepath.Join(root, "terraform", "modules", "security"),
		tfpolicy.Env{Vars: vars, AccountID: env.Account, Region: env.Region, Refs: refs})
}
