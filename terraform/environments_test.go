package terraform_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

func environmentDirs(t testing.TB) []string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(terraformDir(t), "environments", "*"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range dirs {
		if strings.HasPrefix(filepath.Base(d), "_") {
			continue // shared files, linked into each environment
		}
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			out = append(out, d)
		}
	}
	sort.Strings(out)
	return out
}

func stackDir(t testing.TB) string { return filepath.Join(terraformDir(t), "stack") }

// envFilesByName groups an environment's .tf files by file name.
func envFilesByName(t testing.TB, env string) map[string]tfFile {
	t.Helper()
	m := map[string]tfFile{}
	for _, f := range moduleFiles(t, env) {
		m[filepath.Base(f.path)] = f
	}
	return m
}

// shape renders the structure of a body (block types and labels, attribute
// names, recursively) without any value: two environments with the same
// shape differ only in values.
func shape(body *hclsyntax.Body, indent string) string {
	var lines []string
	for name := range body.Attributes {
		lines = append(lines, indent+name+" =")
	}
	sort.Strings(lines)
	var blocks []string
	for _, b := range body.Blocks {
		blocks = append(blocks, fmt.Sprintf("%s%s %q {\n%s%s}", indent, b.Type, b.Labels, shape(b.Body, indent+"  "), indent))
	}
	sort.Strings(blocks)
	return strings.Join(append(lines, blocks...), "\n") + "\n"
}

// TestEnvironmentsDifferOnlyInValues keeps the environments from drifting
// apart: they are thin roots over terraform/stack with the same files, the
// same blocks and the same arguments; only values (sizes, names, the state
// key) differ. The pass-through files are identical.
func TestEnvironmentsDifferOnlyInValues(t *testing.T) {
	t.Parallel()
	envs := environmentDirs(t)
	for _, want := range []string{"staging", "production"} {
		if !slices.ContainsFunc(envs, func(d string) bool { return filepath.Base(d) == want }) {
			t.Errorf("environment %s missing", want)
		}
	}
	if len(envs) < 2 {
		return
	}
	ref := envs[0]
	refFiles := envFilesByName(t, ref)
	for _, env := range envs[1:] {
		files := envFilesByName(t, env)
		if got, want := sortedKeys(files), sortedKeys(refFiles); !slices.Equal(got, want) {
			t.Errorf("%s has %v, %s has %v", rel(t, env), got, rel(t, ref), want)
			continue
		}
		for name, f := range files {
			if got, want := shape(f.body, ""), shape(refFiles[name].body, ""); got != want {
				t.Errorf("%s and %s differ in more than values:\n%s\nvs\n%s", rel(t, f.path), rel(t, refFiles[name].path), got, want)
			}
		}
		for _, name := range []string{"variables.tf", "outputs.tf", "moved.tf"} {
			if f, ok := files[name]; ok && !bytes.Equal(f.src, refFiles[name].src) {
				t.Errorf("%s differs from %s: it only passes through to the stack and must be the same everywhere", rel(t, f.path), rel(t, refFiles[name].path))
			}
		}
	}
}

// TestEnvironmentsAreThin: an environment is a backend, a provider, and one
// call of terraform/stack with its own environment name; no resources.
func TestEnvironmentsAreThin(t *testing.T) {
	t.Parallel()
	allowed := []string{"terraform", "provider", "locals", "module", "variable", "output", "moved"}
	for _, env := range environmentDirs(t) {
		files := moduleFiles(t, env)
		for _, f := range files {
			for _, b := range f.body.Blocks {
				if !slices.Contains(allowed, b.Type) {
					t.Errorf("%s: %s %v belongs in terraform/stack or a module", rel(t, f.path), b.Type, b.Labels)
				}
			}
		}
		mods := blocks(files, "module")
		if len(mods) != 1 || mods[0].Labels[0] != "stack" {
			t.Errorf("%s: want exactly one module call, \"stack\"", rel(t, env))
			continue
		}
		if src := strings.Trim(exprSource(files, mods[0].Body.Attributes["source"].Expr), `"`); src != "../../stack" {
			t.Errorf("%s: module \"stack\" source %s, want ../../stack", rel(t, env), src)
		}
		name := filepath.Base(env)
		envAttr, ok := mods[0].Body.Attributes["environment"]
		if !ok {
			t.Errorf("%s: module \"stack\" does not set environment", rel(t, env))
			continue
		}
		val, diags := resolveLocal(files, envAttr.Expr).Value(nil)
		if diags.HasErrors() || val.Type().FriendlyName() != "string" || val.AsString() != name {
			t.Errorf("%s: environment = %s, want %q (the directory name)", rel(t, env), exprSource(files, resolveLocal(files, envAttr.Expr)), name)
		}
		if len(blocks(files, "provider", "aws")) != 1 {
			t.Errorf("%s: want one provider \"aws\" block", rel(t, env))
		}
	}
}

// TestEnvironmentOutputsPassThrough: every stack output is an output of every
// environment, unchanged (CI reads some with terraform output).
func TestEnvironmentOutputsPassThrough(t *testing.T) {
	t.Parallel()
	want := sortedKeys(moduleOutputs(moduleFiles(t, stackDir(t))))
	for _, env := range environmentDirs(t) {
		files := moduleFiles(t, env)
		var got []string
		for _, b := range blocks(files, "output") {
			name := b.Labels[0]
			got = append(got, name)
			if v := exprSource(files, b.Body.Attributes["value"].Expr); v != "module.stack."+name {
				t.Errorf("%s: output %q = %s, want module.stack.%s", rel(t, env), name, v, name)
			}
		}
		sort.Strings(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s outputs %v, the stack outputs %v", rel(t, env), got, want)
		}
	}
}

// TestMovedBlocks: the moved blocks of an environment move module calls that
// no longer exist in it into the stack, where they do, and (while present)
// cover every module of the stack: a partial move would destroy the rest.
func TestMovedBlocks(t *testing.T) {
	t.Parallel()
	stackCalls := map[string]bool{}
	for _, m := range blocks(moduleFiles(t, stackDir(t)), "module") {
		stackCalls[m.Labels[0]] = true
	}
	for _, env := range environmentDirs(t) {
		files := moduleFiles(t, env)
		moved := blocks(files, "moved")
		if len(moved) == 0 {
			continue
		}
		calls := map[string]bool{}
		for _, m := range blocks(files, "module") {
			calls[m.Labels[0]] = true
		}
		covered := map[string]bool{}
		for _, b := range moved {
			from := traversalNames(b.Body.Attributes["from"])
			to := traversalNames(b.Body.Attributes["to"])
			where := b.Range().String()
			if len(from) != 2 || from[0] != "module" || calls[from[1]] {
				t.Errorf("%s: from must be a module call this root no longer has, got %v", where, from)
				continue
			}
			if !slices.Equal(to, []string{"module", "stack", "module", from[1]}) {
				t.Errorf("%s: to = %v, want module.stack.module.%s", where, to, from[1])
				continue
			}
			if !stackCalls[from[1]] {
				t.Errorf("%s: terraform/stack has no module %q", where, from[1])
			}
			covered[from[1]] = true
		}
		for name := range stackCalls {
			if !covered[name] {
				t.Errorf("%s: moved blocks miss module.%s (it would be destroyed and recreated)", rel(t, env), name)
			}
		}
	}
}

// traversalNames flattens an attribute holding a plain reference such as
// module.a.module.b into its names.
func traversalNames(a *hclsyntax.Attribute) []string {
	if a == nil {
		return nil
	}
	tr, ok := a.Expr.(*hclsyntax.ScopeTraversalExpr)
	if !ok {
		return nil
	}
	var out []string
	for _, step := range tr.Traversal {
		switch s := step.(type) {
		case hcl.TraverseRoot:
			out = append(out, s.Name)
		case hcl.TraverseAttr:
			out = append(out, s.Name)
		default:
			return nil
		}
	}
	return out
}

// TestEnvironmentsHaveRemoteState checks each environment keeps its state in
// S3 with locking, under its own key.
func TestEnvironmentsHaveRemoteState(t *testing.T) {
	t.Parallel()
	keys := map[string]string{}
	for _, env := range environmentDirs(t) {
		files := moduleFiles(t, env)
		var found bool
		for _, tf := range blocks(files, "terraform") {
			for _, b := range tf.Body.Blocks {
				if b.Type != "backend" || len(b.Labels) != 1 || b.Labels[0] != "s3" {
					continue
				}
				found = true
				for _, attr := range []string{"key", "encrypt", "use_lockfile"} {
					if _, ok := b.Body.Attributes[attr]; !ok {
						t.Errorf("%s: s3 backend lacks %s", rel(t, env), attr)
					}
				}
				if k, ok := b.Body.Attributes["key"]; ok {
					key := exprSource(files, k.Expr)
					if other, dup := keys[key]; dup {
						t.Errorf("%s and %s share state key %s", rel(t, env), other, key)
					}
					if want := fmt.Sprintf(`"workspaced/%s/terraform.tfstate"`, filepath.Base(env)); key != want {
						t.Errorf("%s: state key %s, want %s", rel(t, env), key, want)
					}
					keys[key] = rel(t, env)
				}
			}
		}
		if !found {
			t.Errorf("%s has no s3 backend", rel(t, env))
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
