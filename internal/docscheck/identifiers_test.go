package docscheck_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// decls is every name the module declares, by package name: top-level
// identifiers, and Type.Member for methods and struct fields.
type decls map[string]map[string]bool

// TestIdentifiersInDocsExist: every `pkg.Name`, `pkg.Type.Member` and
// `Type.Member` in backticks in docs/*.md, README.md and the package docs,
// where pkg is one of our package names (or a path to one) and Type one of
// our types, names something the code declares. A rename that leaves a
// document behind fails here.
func TestIdentifiersInDocsExist(t *testing.T) {
	root := repoRoot(t)
	d := declared(t, root)
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	docs = append(docs, filepath.Join(root, "README.md"))
	checked := 0
	for _, doc := range docs {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, doc)
		for _, span := range backticked(string(b)) {
			for _, ref := range references(span, d) {
				checked++
				if !ref.exists(d) {
					t.Errorf("%s: `%s` names %s, which the code does not declare", rel, span, ref)
				}
			}
		}
	}
	if checked < 50 {
		t.Fatalf("only %d identifiers checked in the docs: the scanner is broken", checked)
	}
}

// TestReferencesParse pins the grammar of what counts as an identifier.
func TestReferencesParse(t *testing.T) {
	d := decls{
		"workers": {"Provisioner": true, "Reconciler": true, "Reconciler.Reconcile": true},
		"store":   {"Store": true},
		"docker":  {"Runtime": true},
	}
	tests := []struct {
		span string
		want []string
	}{
		{"workers.Provisioner", []string{"workers.Provisioner"}},
		{"workers.Requested/Released/State", []string{"workers.Requested", "workers.Released", "workers.State"}},
		{"workers.Reconciler.Reconcile()", []string{"workers.Reconciler.Reconcile"}},
		{"runtime/docker.Runtime", []string{"docker.Runtime"}},
		{"Reconciler.Reconcile", []string{"workers.Reconciler.Reconcile"}},
		{"http.Server", nil},     // not our package
		{"REDIS_URL", nil},       // an environment variable
		{"docs/redis.md", nil},   // a path
		{"store.go", nil},        // a file
		{"wsd:conv:{id}", nil},   // a Redis key
		{"ecs:TagResource", nil}, // an IAM action
		{"Unknown.Thing", nil},   // not our type
		{"make test", nil},       // a command
	}
	for _, tc := range tests {
		var got []string
		for _, r := range references(tc.span, d) {
			got = append(got, r.String())
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("references(%q) = %v, want %v", tc.span, got, tc.want)
		}
	}
}

var spanRE = regexp.MustCompile("`([^`\n]+)`")

// backticked returns the code spans of markdown text (fenced blocks
// excluded: they hold commands and output, not names).
func backticked(md string) []string {
	var spans []string
	fenced := false
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if fenced {
			continue
		}
		for _, m := range spanRE.FindAllStringSubmatch(line, -1) {
			spans = append(spans, m[1])
		}
	}
	return spans
}

// ref is one identifier a document names.
type ref struct{ pkg, name string }

func (r ref) String() string { return r.pkg + "." + r.name }

func (r ref) exists(d decls) bool { return d[r.pkg][r.name] }

var (
	qualifiedRE = regexp.MustCompile(`^((?:[a-z][a-z0-9-]*/)*)([a-z][a-z0-9]*)\.([A-Z][A-Za-z0-9_]*(?:/[A-Z][A-Za-z0-9_]*)*(?:\.[A-Z][A-Za-z0-9_]*)?)(?:\(\))?$`)
	memberRE    = regexp.MustCompile(`^([A-Z][A-Za-z0-9_]*)\.([A-Z][A-Za-z0-9_]*)(?:\(\))?$`)
)

// references parses span into the identifiers of ours it names.
func references(span string, d decls) []ref {
	if m := qualifiedRE.FindStringSubmatch(span); m != nil {
		pkg := m[2]
		if _, ours := d[pkg]; !ours || pkg == "main" {
			return nil
		}
		rest := m[3]
		member := ""
		if i := strings.LastIndex(rest, "."); i >= 0 {
			rest, member = rest[:i], rest[i:]
		}
		var refs []ref
		for _, name := range strings.Split(rest, "/") {
			refs = append(refs, ref{pkg, name + member})
		}
		return refs
	}
	if m := memberRE.FindStringSubmatch(span); m != nil {
		var owners []string
		for pkg, names := range d {
			if names[m[1]] && pkg != "main" {
				owners = append(owners, pkg)
			}
		}
		if len(owners) == 0 {
			return nil // not one of our types
		}
		sort.Strings(owners)
		for _, pkg := range owners {
			if d[pkg][m[1]+"."+m[2]] {
				return []ref{{pkg, m[1] + "." + m[2]}}
			}
		}
		return []ref{{owners[0], m[1] + "." + m[2]}}
	}
	return nil
}

// declared parses every Go file of the module (tests included: documents
// name tests too).
func declared(t *testing.T, root string) decls {
	t.Helper()
	d := decls{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			if n := e.Name(); path != root && (strings.HasPrefix(n, ".") || n == "testdata" || n == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		pkg := strings.TrimSuffix(f.Name.Name, "_test")
		if d[pkg] == nil {
			d[pkg] = map[string]bool{}
		}
		add(d[pkg], f)
		return nil
	})
	if err != nil {
		t.Fatalf("parse the module: %v", err)
	}
	return d
}

// add records f's top-level names, methods and struct fields.
func add(names map[string]bool, f *ast.File) {
	for _, decl := range f.Decls {
		switch decl := decl.(type) {
		case *ast.FuncDecl:
			if decl.Recv == nil {
				names[decl.Name.Name] = true
				continue
			}
			if recv := receiver(decl.Recv.List[0].Type); recv != "" {
				names[recv+"."+decl.Name.Name] = true
			}
		case *ast.GenDecl:
			for _, spec := range decl.Specs {
				switch spec := spec.(type) {
				case *ast.ValueSpec:
					for _, n := range spec.Names {
						names[n.Name] = true
					}
				case *ast.TypeSpec:
					names[spec.Name.Name] = true
					members(names, spec.Name.Name, spec.Type)
				}
			}
		}
	}
}

// members records a struct's fields and an interface's methods as
// Type.Member.
func members(names map[string]bool, typ string, expr ast.Expr) {
	switch t := expr.(type) {
	case *ast.StructType:
		for _, f := range t.Fields.List {
			for _, n := range f.Names {
				names[typ+"."+n.Name] = true
			}
			if len(f.Names) == 0 { // embedded: its name is its type's
				if n := receiver(f.Type); n != "" {
					names[typ+"."+n] = true
				}
			}
		}
	case *ast.InterfaceType:
		for _, m := range t.Methods.List {
			for _, n := range m.Names {
				names[typ+"."+n.Name] = true
			}
		}
	}
}

// receiver names the type of a receiver or embedded field expression.
func receiver(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.StarExpr:
		return receiver(e.X)
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return e.Sel.Name
	case *ast.IndexExpr:
		return receiver(e.X)
	case *ast.IndexListExpr:
		return receiver(e.X)
	}
	return ""
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test")
		}
		dir = parent
	}
}
