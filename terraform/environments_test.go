package terraform_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
)

func environmentDirs(t testing.TB) []string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(terraformDir(t), "environments", "*"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range dirs {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			out = append(out, d)
		}
	}
	sort.Strings(out)
	return out
}

// TestEnvironmentsShareComposition keeps environments from drifting: the
// composition (main.tf, outputs.tf) is the same file everywhere, and every
// environment declares the same inputs; only defaults differ.
func TestEnvironmentsShareComposition(t *testing.T) {
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
	for _, name := range []string{"main.tf", "outputs.tf"} {
		want, err := os.ReadFile(filepath.Join(ref, name))
		if err != nil {
			t.Fatal(err)
		}
		for _, env := range envs[1:] {
			got, err := os.ReadFile(filepath.Join(env, name))
			if err != nil {
				t.Errorf("%s: %v", rel(t, env), err)
				continue
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from %s: put environment differences in variables.tf", rel(t, filepath.Join(env, name)), rel(t, filepath.Join(ref, name)))
			}
		}
	}
	refVars := sortedKeys(moduleVariables(t, moduleFiles(t, ref)))
	for _, env := range envs[1:] {
		if got := sortedKeys(moduleVariables(t, moduleFiles(t, env))); !slices.Equal(got, refVars) {
			t.Errorf("%s declares %v, %s declares %v", rel(t, env), got, rel(t, ref), refVars)
		}
	}
}

// TestEnvironmentsHaveRemoteState checks each environment keeps its state in
// S3 with locking and its own key.
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
