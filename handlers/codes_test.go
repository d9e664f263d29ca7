package handlers_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestErrorCodesDocumented lists the error codes in the code (every string
// constant named code* in this package) and in the table of
// docs/contracts.md ("Error codes"): both lists must be the same, each code
// once.
func TestErrorCodesDocumented(t *testing.T) {
	inCode := codeConstants(t)
	inDocs := documentedCodes(t)
	for _, c := range inCode {
		if !slices.Contains(inDocs, c) {
			t.Errorf("code %q is not in docs/contracts.md's error code table", c)
		}
	}
	for _, c := range inDocs {
		if !slices.Contains(inCode, c) {
			t.Errorf("docs/contracts.md lists code %q, which the handlers never answer", c)
		}
	}
	if len(inCode) < 10 {
		t.Fatalf("found only %d codes in the source: %v", len(inCode), inCode)
	}
}

func codeConstants(t *testing.T) []string {
	t.Helper()
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	var codes []string
	for _, f := range pkgs["handlers"].Files {
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if !strings.HasPrefix(name.Name, "code") || i >= len(vs.Values) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						continue
					}
					v, _ := strconv.Unquote(lit.Value)
					if other, dup := seen[v]; dup {
						t.Errorf("code %q is both %s and %s: one meaning per code", v, other, name.Name)
					}
					seen[v] = name.Name
					codes = append(codes, v)
				}
			}
		}
	}
	slices.Sort(codes)
	return codes
}

func documentedCodes(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../docs/contracts.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n### Error codes\n")
	if !ok {
		t.Fatal("docs/contracts.md has no '### Error codes' section")
	}
	if i := strings.Index(section, "\n#"); i >= 0 {
		section = section[:i]
	}
	row := regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\|")
	var codes []string
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		if slices.Contains(codes, m[1]) {
			t.Errorf("docs list code %q twice", m[1])
		}
		codes = append(codes, m[1])
	}
	slices.Sort(codes)
	return codes
}
