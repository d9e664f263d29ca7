package layers_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"sort"
	"strings"
	"testing"

	"github.com/workspaced/workspaced/internal/layers"
)

// pkg is what `go list -json` says of one package.
type pkg struct {
	ImportPath string
	Module     *struct{ Path string }
	Imports    []string
}

// TestImportDirection checks every production import edge between the
// module's packages against the layer table.
func TestImportDirection(t *testing.T) {
	mod, pkgs := list(t)
	if errs := layers.Check(mod, pkgs); len(errs) > 0 {
		t.Fatalf("import direction broken (see internal/layers and docs/development.md):\n%s", strings.Join(errs, "\n"))
	}
}

// TestCheckRefusesForbiddenEdges shows the check is not vacuous: each
// forbidden edge, added to the real graph, is reported.
func TestCheckRefusesForbiddenEdges(t *testing.T) {
	mod, pkgs := list(t)
	cases := []struct{ from, to, want string }{
		{"files", "workers", "adapters may not import consumers"},
		{"runtime/ecs", "runtime/docker", "adapters may not import adapters"},
		{"workspace", "store", "vocabulary may not import adapters"},
		{"handlers", "events/bus", "consumers may not import adapters"},
		{"workers", "internal/ecsdouble", "consumers may not import testing"},
		{"brand/new", "workspace", "has no layer"},
	}
	for _, tc := range cases {
		t.Run(tc.from+"->"+tc.to, func(t *testing.T) {
			graph := map[string][]string{}
			for k, v := range pkgs {
				graph[k] = append([]string(nil), v...)
			}
			graph[tc.from] = append(graph[tc.from], tc.to)
			errs := layers.Check(mod, graph)
			if !strings.Contains(strings.Join(errs, "\n"), tc.want) {
				t.Fatalf("adding %s -> %s: errors %q, want one saying %q", tc.from, tc.to, errs, tc.want)
			}
		})
	}
}

// TestEveryLayeredPackageExists keeps the table honest: a package that
// was moved or removed leaves the table too.
func TestEveryLayeredPackageExists(t *testing.T) {
	_, pkgs := list(t)
	var stale []string
	for p := range layers.Packages {
		if _, ok := pkgs[p]; !ok {
			stale = append(stale, p)
		}
	}
	sort.Strings(stale)
	if len(stale) > 0 {
		t.Fatalf("layer table names packages that do not exist: %v", stale)
	}
}

// list returns the module path and each package's imports of the module's
// own packages, relative to the module.
func list(t *testing.T) (string, map[string][]string) {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", "github.com/workspaced/workspaced/...").Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go list: %v\n%s", err, stderr)
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	mod := ""
	graph := map[string][]string{}
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decode go list: %v", err)
		}
		if p.Module == nil {
			t.Fatalf("package %s has no module", p.ImportPath)
		}
		mod = p.Module.Path
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, mod), "/")
		var ours []string
		for _, imp := range p.Imports {
			if r, ok := strings.CutPrefix(imp, mod+"/"); ok {
				ours = append(ours, r)
			}
		}
		graph[rel] = ours
	}
	if len(graph) == 0 {
		t.Fatal(fmt.Errorf("go list found no packages"))
	}
	return mod, graph
}
