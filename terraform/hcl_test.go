package terraform_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// tfFile is one parsed .tf file.
type tfFile struct {
	path string
	src  []byte
	body *hclsyntax.Body
}

// tfFiles parses every .tf file under dir (recursively), failing the test on
// a syntax error.
func tfFiles(t testing.TB, dir string) []tfFile {
	t.Helper()
	var files []tfFile
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		// "_shared" holds files the environments include by symlink: they are
		// parsed (and checked) as part of each environment, never alone.
		if d.IsDir() && (d.Name() == ".terraform" || strings.HasPrefix(d.Name(), ".") || strings.HasPrefix(d.Name(), "_")) && path != dir {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".tf") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		f, diags := hclsyntax.ParseConfig(src, path, hcl.InitialPos)
		if diags.HasErrors() {
			t.Errorf("parse %s: %s", path, diags.Error())
			return nil
		}
		files = append(files, tfFile{path: path, src: src, body: f.Body.(*hclsyntax.Body)})
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	return files
}

// moduleFiles parses the .tf files of one directory (a Terraform module).
func moduleFiles(t testing.TB, dir string) []tfFile {
	t.Helper()
	var out []tfFile
	for _, f := range tfFiles(t, dir) {
		if filepath.Dir(f.path) == filepath.Clean(dir) {
			out = append(out, f)
		}
	}
	return out
}

// blocks returns the top-level blocks of a module with the given type and
// leading labels.
func blocks(files []tfFile, typ string, labels ...string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, f := range files {
		for _, b := range f.body.Blocks {
			if b.Type == typ && len(b.Labels) >= len(labels) && slices.Equal(b.Labels[:len(labels)], labels) {
				out = append(out, b)
			}
		}
	}
	return out
}

// locals collects the local values of a module.
func locals(files []tfFile) map[string]hclsyntax.Expression {
	m := map[string]hclsyntax.Expression{}
	for _, b := range blocks(files, "locals") {
		for name, a := range b.Body.Attributes {
			m[name] = a.Expr
		}
	}
	return m
}

// resolveLocal follows expr through a local.NAME reference, once.
func resolveLocal(files []tfFile, expr hclsyntax.Expression) hclsyntax.Expression {
	tr, ok := expr.(*hclsyntax.ScopeTraversalExpr)
	if !ok || len(tr.Traversal) != 2 || tr.Traversal.RootName() != "local" {
		return expr
	}
	attr, ok := tr.Traversal[1].(hcl.TraverseAttr)
	if !ok {
		return expr
	}
	if e, ok := locals(files)[attr.Name]; ok {
		return e
	}
	return expr
}

// isTemplatefileOf reports whether expr is templatefile("...<name>", ...).
func isTemplatefileOf(files []tfFile, expr hclsyntax.Expression, name string) bool {
	call, ok := resolveLocal(files, expr).(*hclsyntax.FunctionCallExpr)
	if !ok || call.Name != "templatefile" || len(call.Args) != 2 {
		return false
	}
	src := exprSource(files, call.Args[0])
	return strings.HasSuffix(strings.Trim(src, `"`), "/templates/"+name)
}

func exprSource(files []tfFile, e hclsyntax.Expression) string {
	r := e.Range()
	for _, f := range files {
		if f.path == r.Filename {
			return string(r.SliceBytes(f.src))
		}
	}
	return ""
}

func modulesDir(t testing.TB) string {
	return filepath.Join(repoRoot(t), "terraform", "modules")
}

func TestWorkspaceTaskDefinitionResource(t *testing.T) {
	t.Parallel()
	files := moduleFiles(t, filepath.Join(modulesDir(t), "services"))
	tds := blocks(files, "resource", "aws_ecs_task_definition", "workspace")
	if len(tds) != 1 {
		t.Fatalf("want one aws_ecs_task_definition.workspace, got %d", len(tds))
	}
	body := tds[0].Body
	if _, ok := body.Attributes["task_role_arn"]; ok {
		t.Error("the workspace task definition must not have a task_role_arn")
	}
	if _, ok := body.Attributes["execution_role_arn"]; !ok {
		t.Error("the workspace task definition needs an execution_role_arn (pulls, logs, secrets)")
	}
	for attr, want := range map[string]string{"network_mode": `"awsvpc"`, "requires_compatibilities": `["EC2"]`} {
		a, ok := body.Attributes[attr]
		if !ok {
			t.Errorf("%s missing", attr)
			continue
		}
		if got := strings.Join(strings.Fields(exprSource(files, a.Expr)), ""); got != want {
			t.Errorf("%s = %s, want %s", attr, got, want)
		}
	}
	cd, ok := body.Attributes["container_definitions"]
	if !ok || !isTemplatefileOf(files, cd.Expr, "workspace-containers.json.tftpl") {
		t.Error("container_definitions must be templatefile(.../templates/workspace-containers.json.tftpl)")
	}
}

func TestTaskStateChangeRuleUsesPatternTemplate(t *testing.T) {
	t.Parallel()
	files := moduleFiles(t, filepath.Join(modulesDir(t), "messaging"))
	rules := blocks(files, "resource", "aws_cloudwatch_event_rule")
	if len(rules) != 1 {
		t.Fatalf("want one aws_cloudwatch_event_rule, got %d", len(rules))
	}
	ep, ok := rules[0].Body.Attributes["event_pattern"]
	if !ok || !isTemplatefileOf(files, ep.Expr, "task-state-change-pattern.json.tftpl") {
		t.Error("event_pattern must be templatefile(.../templates/task-state-change-pattern.json.tftpl)")
	}
	targets := blocks(files, "resource", "aws_cloudwatch_event_target")
	if len(targets) != 1 || !strings.Contains(exprSource(files, targets[0].Body.Attributes["arn"].Expr), "aws_sqs_queue.task_events.arn") {
		t.Error("the rule's target must be the task-events queue")
	}
	policy := blocks(files, "data", "aws_iam_policy_document", "task_events_queue")
	if len(policy) != 1 {
		t.Fatal("no queue policy document for the task-events queue")
	}
	src := string(policy[0].Range().SliceBytes(fileSrc(files, policy[0].Range().Filename)))
	for _, want := range []string{`"events.amazonaws.com"`, `"sqs:SendMessage"`, `"aws:SourceArn"`, "aws_cloudwatch_event_rule.task_state_change.arn"} {
		if !strings.Contains(src, want) {
			t.Errorf("task-events queue policy lacks %s", want)
		}
	}
}

func fileSrc(files []tfFile, name string) []byte {
	for _, f := range files {
		if f.path == name {
			return f.src
		}
	}
	return nil
}
