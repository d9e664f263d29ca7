package terraform_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
)

// fixFormat makes TestFormatted rewrite unformatted files, like
// `terraform fmt`: go test ./terraform -run TestFormatted -fmt
var fixFormat = flag.Bool("fmt", false, "rewrite unformatted Terraform files instead of failing")

func terraformDir(t testing.TB) string { return filepath.Join(repoRoot(t), "terraform") }

// moduleDirs lists every directory under terraform/ holding .tf files.
func moduleDirs(t testing.TB) []string {
	t.Helper()
	seen := map[string]bool{}
	for _, f := range tfFiles(t, terraformDir(t)) {
		seen[filepath.Dir(f.path)] = true
	}
	var dirs []string
	for d := range seen {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	if len(dirs) == 0 {
		t.Fatal("no Terraform modules found")
	}
	return dirs
}

func rel(t testing.TB, path string) string {
	r, err := filepath.Rel(repoRoot(t), path)
	if err != nil {
		return path
	}
	return r
}

// TestFormatted is `terraform fmt -check`: hclwrite.Format must not change
// any .tf or .tfvars file.
func TestFormatted(t *testing.T) {
	t.Parallel()
	err := filepath.WalkDir(terraformDir(t), func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".terraform" {
			return filepath.SkipDir
		}
		if d.IsDir() || !(strings.HasSuffix(path, ".tf") || strings.HasSuffix(path, ".tfvars") || strings.HasSuffix(path, ".pkr.hcl")) {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if _, diags := hclwrite.ParseConfig(src, path, hcl.InitialPos); diags.HasErrors() {
			t.Errorf("%s does not parse: %s", rel(t, path), diags.Error())
			return nil
		}
		if got := hclwrite.Format(src); !bytes.Equal(got, src) {
			if *fixFormat {
				return os.WriteFile(path, got, 0o644)
			}
			t.Errorf("%s is not formatted (terraform fmt; or go test ./terraform -run TestFormatted -fmt)", rel(t, path))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// variableDecl is a module's declared input.
type variableDecl struct {
	required bool
}

func moduleVariables(t testing.TB, files []tfFile) map[string]variableDecl {
	vars := map[string]variableDecl{}
	for _, b := range blocks(files, "variable") {
		_, hasDefault := b.Body.Attributes["default"]
		vars[b.Labels[0]] = variableDecl{required: !hasDefault}
	}
	return vars
}

func moduleOutputs(files []tfFile) map[string]bool {
	outs := map[string]bool{}
	for _, b := range blocks(files, "output") {
		outs[b.Labels[0]] = true
	}
	return outs
}

func TestVariablesAndOutputsDocumented(t *testing.T) {
	t.Parallel()
	for _, dir := range moduleDirs(t) {
		files := moduleFiles(t, dir)
		for _, b := range blocks(files, "variable") {
			for _, attr := range []string{"type", "description"} {
				a, ok := b.Body.Attributes[attr]
				if !ok {
					t.Errorf("%s: variable %q has no %s", rel(t, dir), b.Labels[0], attr)
					continue
				}
				if attr == "description" && strings.TrimSpace(strings.Trim(exprSource(files, a.Expr), `"`)) == "" {
					t.Errorf("%s: variable %q has an empty description", rel(t, dir), b.Labels[0])
				}
			}
		}
		for _, b := range blocks(files, "output") {
			for _, attr := range []string{"value", "description"} {
				if _, ok := b.Body.Attributes[attr]; !ok {
					t.Errorf("%s: output %q has no %s", rel(t, dir), b.Labels[0], attr)
				}
			}
		}
	}
}

// metaArgs are module block arguments that are not input variables.
var metaArgs = []string{"source", "version", "providers", "count", "for_each", "depends_on"}

func TestModuleCallsMatchModules(t *testing.T) {
	t.Parallel()
	calls := 0
	for _, dir := range moduleDirs(t) {
		files := moduleFiles(t, dir)
		for _, m := range blocks(files, "module") {
			src, ok := m.Body.Attributes["source"]
			if !ok {
				t.Errorf("%s: module %q has no source", rel(t, dir), m.Labels[0])
				continue
			}
			source := strings.Trim(exprSource(files, src.Expr), `"`)
			if !strings.HasPrefix(source, "./") && !strings.HasPrefix(source, "../") {
				continue // registry module: not checked here
			}
			calls++
			target := filepath.Join(dir, source)
			targetFiles := moduleFiles(t, target)
			if len(targetFiles) == 0 {
				t.Errorf("%s: module %q source %s has no .tf files", rel(t, dir), m.Labels[0], source)
				continue
			}
			declared := moduleVariables(t, targetFiles)
			for name := range m.Body.Attributes {
				if slices.Contains(metaArgs, name) {
					continue
				}
				if _, ok := declared[name]; !ok {
					t.Errorf("%s: module %q passes %q, which %s does not declare", rel(t, dir), m.Labels[0], name, source)
				}
			}
			for name, v := range declared {
				if _, passed := m.Body.Attributes[name]; v.required && !passed {
					t.Errorf("%s: module %q does not pass required variable %q of %s", rel(t, dir), m.Labels[0], name, source)
				}
			}
		}
	}
	if calls == 0 {
		t.Error("no local module calls found (environments missing?)")
	}
}

// traversals returns every variable reference in a body, recursively.
func traversals(body *hclsyntax.Body) []hcl.Traversal {
	var out []hcl.Traversal
	for _, a := range body.Attributes {
		out = append(out, a.Expr.Variables()...)
	}
	for _, b := range body.Blocks {
		out = append(out, traversals(b.Body)...)
	}
	return out
}

// withoutBlocks is body without its top-level blocks of type typ.
func withoutBlocks(body *hclsyntax.Body, typ string) *hclsyntax.Body {
	out := *body
	out.Blocks = nil
	for _, b := range body.Blocks {
		if b.Type != typ {
			out.Blocks = append(out.Blocks, b)
		}
	}
	return &out
}

// TestReferencesResolve checks, per module, that every var.X is declared,
// every local.X defined, and every module.X.Y names a module call X whose
// source declares output Y. moved blocks name addresses that no longer exist
// by design: TestMovedBlocks checks them.
func TestReferencesResolve(t *testing.T) {
	t.Parallel()
	for _, dir := range moduleDirs(t) {
		files := moduleFiles(t, dir)
		vars := moduleVariables(t, files)
		locs := locals(files)
		calls := map[string]map[string]bool{}
		for _, m := range blocks(files, "module") {
			source := strings.Trim(exprSource(files, m.Body.Attributes["source"].Expr), `"`)
			if strings.HasPrefix(source, ".") {
				calls[m.Labels[0]] = moduleOutputs(moduleFiles(t, filepath.Join(dir, source)))
			} else {
				calls[m.Labels[0]] = nil // registry module: outputs unknown
			}
		}
		for _, f := range files {
			for _, tr := range traversals(withoutBlocks(f.body, "moved")) {
				if len(tr) < 2 {
					continue
				}
				attr, ok := tr[1].(hcl.TraverseAttr)
				if !ok {
					continue
				}
				where := tr.SourceRange().String()
				switch tr.RootName() {
				case "var":
					if _, ok := vars[attr.Name]; !ok {
						t.Errorf("%s: var.%s is not declared", where, attr.Name)
					}
				case "local":
					if _, ok := locs[attr.Name]; !ok {
						t.Errorf("%s: local.%s is not defined", where, attr.Name)
					}
				case "module":
					outs, ok := calls[attr.Name]
					if !ok {
						t.Errorf("%s: module.%s is not called here", where, attr.Name)
						continue
					}
					if outs == nil || len(tr) < 3 {
						continue
					}
					if out, ok := tr[2].(hcl.TraverseAttr); ok && !outs[out.Name] {
						t.Errorf("%s: module.%s has no output %q", where, attr.Name, out.Name)
					}
				}
			}
		}
	}
}
