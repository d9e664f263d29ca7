package tfpolicy_test

import (
	"path/filepath"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/workspaced/workspaced/internal/ecsdouble"
	"github.com/workspaced/workspaced/internal/iampolicy"
	"github.com/workspaced/workspaced/internal/tfpolicy"
)

const (
	account = "123456789012"
	region  = "eu-west-1"
)

// Every policy document of every module renders, and every rendering is a
// policy the evaluator accepts: nothing in terraform/ is beyond what the
// doubles enforce.
func TestEveryDocumentRenders(t *testing.T) {
	mods, err := filepath.Glob(filepath.Join(root(t), "terraform", "modules", "*"))
	if err != nil {
		t.Fatal(err)
	}
	rendered := 0
	for _, dir := range mods {
		m, err := tfpolicy.Load(dir, tfpolicy.Env{AccountID: account, Region: region, Vars: testVars()})
		if err != nil {
			t.Fatalf("load %s: %v", dir, err)
		}
		for _, name := range m.Documents() {
			doc, err := m.Render(name)
			if err != nil {
				t.Errorf("%s: render %s: %v", filepath.Base(dir), name, err)
				continue
			}
			if _, err := iampolicy.Parse(doc); err != nil {
				t.Errorf("%s: %s does not parse: %v\n%s", filepath.Base(dir), name, err, doc)
			}
			rendered++
		}
	}
	if rendered < 5 {
		t.Fatalf("rendered %d documents, want the modules' policies", rendered)
	}
}

// The backend's policy, rendered from terraform/modules/security with the
// test environment's ARNs, allows what the backend does on its cluster
// and nothing on another.
func TestBackendPolicy(t *testing.T) {
	m, err := tfpolicy.Load(filepath.Join(root(t), "terraform", "modules", "security"), tfpolicy.Env{AccountID: account, Region: region, Vars: testVars()})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := m.Render("backend")
	if err != nil {
		t.Fatal(err)
	}
	p, err := iampolicy.Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	pols := []iampolicy.Named{{Name: "backend", Policy: p}}
	cluster := "arn:aws:ecs:" + region + ":" + account + ":cluster/ws-test"
	tests := []struct {
		name string
		req  iampolicy.Request
		want iampolicy.Decision
	}{
		{"StopTask on the cluster", iampolicy.Request{Action: "ecs:StopTask", Resource: "arn:aws:ecs:" + region + ":" + account + ":task/ws-test/abc",
			Context: map[string][]string{"ecs:cluster": {cluster}}}, iampolicy.Allowed},
		{"StopTask on another cluster", iampolicy.Request{Action: "ecs:StopTask", Resource: "arn:aws:ecs:" + region + ":" + account + ":task/other/abc",
			Context: map[string][]string{"ecs:cluster": {"arn:aws:ecs:" + region + ":" + account + ":cluster/other"}}}, iampolicy.ImplicitDeny},
		{"PassRole to EC2", iampolicy.Request{Action: "iam:PassRole", Resource: m.Ref("aws_iam_role.execution.arn"),
			Context: map[string][]string{"iam:PassedToService": {"ec2.amazonaws.com"}}}, iampolicy.ImplicitDeny},
		{"PassRole of the execution role to ECS tasks", iampolicy.Request{Action: "iam:PassRole", Resource: m.Ref("aws_iam_role.execution.arn"),
			Context: map[string][]string{"iam:PassedToService": {"ecs-tasks.amazonaws.com"}}}, iampolicy.Allowed},
		{"s3 on another bucket", iampolicy.Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::other/x"}, iampolicy.ImplicitDeny},
	}
	for _, tc := range tests {
		if got := iampolicy.Evaluate(tc.req, pols, nil); got.Decision != tc.want {
			t.Errorf("%s: %v, want %v\n%s", tc.name, got.Decision, tc.want, doc)
		}
	}
}

func testVars() map[string]cty.Value {
	return map[string]cty.Value{
		"name_prefix":                 cty.StringVal("ws-test"),
		"aws_region":                  cty.StringVal(region),
		"cluster_arn":                 cty.StringVal("arn:aws:ecs:" + region + ":" + account + ":cluster/ws-test"),
		"workspace_task_family":       cty.StringVal("ws-test-workspace"),
		"command_queue_arns":          cty.ListVal([]cty.Value{cty.StringVal("arn:aws:sqs:" + region + ":" + account + ":ws-test-workspace-requested")}),
		"task_events_queue_arn":       cty.StringVal("arn:aws:sqs:" + region + ":" + account + ":ws-test-task-events"),
		"dead_letter_queue_arns":      cty.ListVal([]cty.Value{cty.StringVal("arn:aws:sqs:" + region + ":" + account + ":ws-test-workspace-requested-dlq")}),
		"workspace_files_bucket_arn":  cty.StringVal("arn:aws:s3:::ws-test-files"),
		"workspace_files_kms_key_arn": cty.StringVal("arn:aws:kms:" + region + ":" + account + ":key/files"),
		"metrics_log_group_arn":       cty.StringVal("arn:aws:logs:" + region + ":" + account + ":log-group:/ws-test/metrics"),
		"ecr_repository_arns":         cty.ListVal([]cty.Value{cty.StringVal("arn:aws:ecr:" + region + ":" + account + ":repository/ws")}),
		"log_group_arns":              cty.ListVal([]cty.Value{cty.StringVal("arn:aws:logs:" + region + ":" + account + ":log-group:/ws-test")}),
		"ssm_parameter_prefix":        cty.StringVal("/ws-test"),
	}
}

func root(t *testing.T) string {
	t.Helper()
	dir, err := ecsdouble.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}
