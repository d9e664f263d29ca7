package localstack_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// messagingSettings are the numbers of terraform/modules/messaging the init
// script mirrors.
type messagingSettings struct {
	commandVisibility    int
	taskEventsVisibility int
	maxReceiveCount      int
	queueRetention       int
	dlqRetention         int
}

// terraformMessaging reads those numbers from the Terraform module: variable
// defaults and literal locals.
func terraformMessaging(t testing.TB) messagingSettings {
	t.Helper()
	dir := filepath.Join(repoRoot(t), "terraform", "modules", "messaging")
	values := map[string]int{}
	for _, name := range []string{"variables.tf", "queues.tf"} {
		path := filepath.Join(dir, name)
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		f, diags := hclsyntax.ParseConfig(src, path, hcl.InitialPos)
		if diags.HasErrors() {
			t.Fatal(diags.Error())
		}
		for _, b := range f.Body.(*hclsyntax.Body).Blocks {
			switch {
			case b.Type == "variable":
				if a, ok := b.Body.Attributes["default"]; ok {
					if n, ok := literalInt(a.Expr); ok {
						values["var."+b.Labels[0]] = n
					}
				}
			case b.Type == "locals":
				for k, a := range b.Body.Attributes {
					if n, ok := literalInt(a.Expr); ok {
						values["local."+k] = n
					}
				}
			}
		}
	}
	get := func(k string) int {
		v, ok := values[k]
		if !ok {
			t.Fatalf("terraform/modules/messaging has no literal %s", k)
		}
		return v
	}
	return messagingSettings{
		commandVisibility:    get("var.command_visibility_timeout_seconds"),
		taskEventsVisibility: get("var.task_events_visibility_timeout_seconds"),
		maxReceiveCount:      get("var.max_receive_count"),
		queueRetention:       get("local.queue_retention_seconds"),
		dlqRetention:         get("local.dlq_retention_seconds"),
	}
}

func literalInt(e hclsyntax.Expression) (int, bool) {
	v, diags := e.Value(nil)
	if diags.HasErrors() || !v.IsKnown() || v.IsNull() || v.Type().FriendlyName() != "number" {
		return 0, false
	}
	bf := v.AsBigFloat()
	if bf == nil {
		return 0, false
	}
	i, acc := bf.Int64()
	if acc != 0 {
		return 0, false
	}
	return int(i), true
}
