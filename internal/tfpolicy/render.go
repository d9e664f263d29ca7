// Package tfpolicy renders the IAM policy documents that the Terraform
// code declares (data "aws_iam_policy_document" blocks) into policy JSON,
// in Go, for the test doubles to enforce: a policy is evaluated exactly as
// written in terraform/, never as a copy.
//
// It evaluates a module's locals, variables (given values, else their
// defaults) and the documents' expressions with HCL and the cty standard
// functions, expanding dynamic blocks. References to resources and data
// sources take the values the caller binds (an ARN per resource the test
// environment stands in for), or a synthetic ARN derived from the
// resource's type and name, which a test may read back with Ref.
package tfpolicy

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/dynblock"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"

	"github.com/workspaced/workspaced/internal/iampolicy"
)

// Env is what a rendering binds: the module's input variables, and the
// account and region the synthetic ARNs use.
type Env struct {
	Vars      map[string]cty.Value
	AccountID string
	Region    string
	Partition string // default "aws"
	// Refs binds resource and data-source attributes, by their Terraform
	// address ("aws_iam_role.execution.arn"); unbound ones are synthetic
	// (see Ref).
	Refs map[string]string
}

// Module is a parsed Terraform module.
type Module struct {
	dir    string
	env    Env
	ctx    *hcl.EvalContext
	docs   map[string]*hcl.Block
	locals map[string]hcl.Expression
}

// Load parses the module in dir and evaluates its variables and locals.
func Load(dir string, env Env) (*Module, error) {
	if env.Partition == "" {
		env.Partition = "aws"
	}
	p := hclparse.NewParser()
	files, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil {
		return nil, err
	}
	m := &Module{dir: dir, env: env, docs: map[string]*hcl.Block{}, locals: map[string]hcl.Expression{}}
	vars := map[string]cty.Value{}
	refs := map[string]map[string]map[string]cty.Value{} // type → name → attr → value
	var repeated []*hcl.Block                            // resources with for_each or count
	for _, f := range files {
		file, diags := p.ParseHCLFile(f)
		if diags.HasErrors() {
			return nil, fmt.Errorf("parse %s: %w", f, diags)
		}
		content, _, diags := file.Body.PartialContent(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{
			{Type: "variable", LabelNames: []string{"name"}},
			{Type: "locals"},
			{Type: "resource", LabelNames: []string{"type", "name"}},
			{Type: "data", LabelNames: []string{"type", "name"}},
		}})
		if diags.HasErrors() {
			return nil, fmt.Errorf("parse %s: %w", f, diags)
		}
		for _, b := range content.Blocks {
			switch b.Type {
			case "variable":
				if v, ok := env.Vars[b.Labels[0]]; ok {
					vars[b.Labels[0]] = v
					continue
				}
				attrs, _ := b.Body.JustAttributes()
				if def, ok := attrs["default"]; ok {
					v, diags := def.Expr.Value(nil)
					if !diags.HasErrors() {
						vars[b.Labels[0]] = v
					}
				}
			case "locals":
				attrs, diags := b.Body.JustAttributes()
				if diags.HasErrors() {
					return nil, fmt.Errorf("locals in %s: %w", f, diags)
				}
				for name, a := range attrs {
					m.locals[name] = a.Expr
				}
			case "resource":
				if c, _, _ := b.Body.PartialContent(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "for_each"}, {Name: "count"}}}); len(c.Attributes) > 0 {
					repeated = append(repeated, b)
					continue
				}
				m.bind(refs, b.Labels[0], b.Labels[1], "")
			case "data":
				if b.Labels[0] == "aws_iam_policy_document" {
					m.docs[b.Labels[1]] = b
				}
			}
		}
	}
	for name, v := range env.Vars {
		vars[name] = v
	}
	dataRefs := map[string]map[string]map[string]cty.Value{
		"aws_caller_identity": {"current": {"account_id": cty.StringVal(env.AccountID)}},
		"aws_partition":       {"current": {"partition": cty.StringVal(env.Partition)}},
		"aws_region":          {"current": {"name": cty.StringVal(env.Region), "region": cty.StringVal(env.Region)}},
	}
	m.ctx = &hcl.EvalContext{
		Variables: map[string]cty.Value{
			"var":  cty.ObjectVal(vars),
			"path": cty.ObjectVal(map[string]cty.Value{"module": cty.StringVal(dir)}),
		},
		Functions: functions(dir),
	}
	for typ, byName := range refs {
		m.ctx.Variables[typ] = objects(byName)
	}
	m.ctx.Variables["data"] = cty.ObjectVal(map[string]cty.Value{
		"aws_caller_identity": objects(dataRefs["aws_caller_identity"]),
		"aws_partition":       objects(dataRefs["aws_partition"]),
		"aws_region":          objects(dataRefs["aws_region"]),
	})
	m.evalLocals()
	// Resources with for_each become maps of instances, once the locals
	// their for_each reads are known; then the locals that read them.
	for _, b := range repeated {
		keys, err := m.instances(b)
		if err != nil || keys == nil {
			continue // count, or not evaluable here: left unbound
		}
		inst := map[string]map[string]cty.Value{}
		for k := range keys {
			one := map[string]map[string]map[string]cty.Value{}
			m.bind(one, b.Labels[0], b.Labels[1], k)
			inst[k] = one[b.Labels[0]][b.Labels[1]]
		}
		typ := b.Labels[0]
		o := map[string]cty.Value{}
		if v, ok := m.ctx.Variables[typ]; ok && v.LengthInt() > 0 {
			o = v.AsValueMap()
		}
		o[b.Labels[1]] = objects(inst)
		m.ctx.Variables[typ] = cty.ObjectVal(o)
	}
	m.evalLocals()
	return m, nil
}

// Ref returns the value bound to a resource attribute address, or the
// synthetic one Load gave it.
func (m *Module) Ref(address string) string {
	parts := strings.Split(address, ".")
	if len(parts) != 3 {
		return ""
	}
	v, ok := m.ctx.Variables[parts[0]]
	if !ok || !v.Type().IsObjectType() || !v.Type().HasAttribute(parts[1]) {
		return ""
	}
	r := v.GetAttr(parts[1])
	if !r.Type().HasAttribute(parts[2]) {
		return ""
	}
	return r.GetAttr(parts[2]).AsString()
}

// Documents lists the policy documents the module declares; a document
// with for_each is listed once per instance, as name["key"].
func (m *Module) Documents() []string {
	var names []string
	for n, b := range m.docs {
		keys, err := m.instances(b)
		if err != nil || keys == nil {
			names = append(names, n)
			continue
		}
		for k := range keys {
			names = append(names, fmt.Sprintf("%s[%q]", n, k))
		}
	}
	sort.Strings(names)
	return names
}

// instances evaluates a block's for_each: nil without one, else each
// key's value.
func (m *Module) instances(b *hcl.Block) (map[string]cty.Value, error) {
	content, _, diags := b.Body.PartialContent(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "for_each"}}})
	if diags.HasErrors() {
		return nil, diags
	}
	a, ok := content.Attributes["for_each"]
	if !ok {
		return nil, nil
	}
	v, diags := a.Expr.Value(m.ctx)
	if diags.HasErrors() {
		return nil, diags
	}
	out := map[string]cty.Value{}
	if v.Type().IsSetType() {
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			out[e.AsString()] = e
		}
		return out, nil
	}
	for it := v.ElementIterator(); it.Next(); {
		k, e := it.Element()
		out[k.AsString()] = e
	}
	return out, nil
}

// bind gives resource typ.name its attributes: the caller's, else
// synthetic ones.
func (m *Module) bind(refs map[string]map[string]map[string]cty.Value, typ, name, key string) {
	if refs[typ] == nil {
		refs[typ] = map[string]map[string]cty.Value{}
	}
	service := strings.SplitN(strings.TrimPrefix(typ, "aws_"), "_", 2)[0]
	id, addr := name, typ+"."+name
	if key != "" {
		id, addr = name+"/"+key, fmt.Sprintf("%s.%s[%q]", typ, name, key)
	}
	region, account := m.env.Region, m.env.AccountID
	switch service {
	case "iam":
		region = "" // global
	case "s3":
		region, account = "", ""
	}
	synthetic := fmt.Sprintf("arn:%s:%s:%s:%s:%s/%s", m.env.Partition, service, region, account, strings.TrimPrefix(typ, "aws_"+service+"_"), id)
	attrs := map[string]cty.Value{"arn": cty.StringVal(synthetic), "id": cty.StringVal(id), "name": cty.StringVal(id)}
	prefix := addr + "."
	for addr, v := range m.env.Refs {
		if attr, ok := strings.CutPrefix(addr, prefix); ok {
			attrs[attr] = cty.StringVal(v)
		}
	}
	refs[typ][name] = attrs
}

func objects(byName map[string]map[string]cty.Value) cty.Value {
	o := map[string]cty.Value{}
	for n, attrs := range byName {
		o[n] = cty.ObjectVal(attrs)
	}
	return cty.ObjectVal(o)
}

// evalLocals evaluates the locals that can be, in dependency order (a
// local that refers to one not yet known waits for the next round); a
// local that refers to something not bound here stays unknown.
func (m *Module) evalLocals() {
	known := map[string]cty.Value{}
	if v, ok := m.ctx.Variables["local"]; ok && v.LengthInt() > 0 {
		known = v.AsValueMap()
	}
	pending := map[string]hcl.Expression{}
	for k, v := range m.locals {
		if _, done := known[k]; !done {
			pending[k] = v
		}
	}
	for len(pending) > 0 {
		progress := false
		for name, expr := range pending {
			m.ctx.Variables["local"] = cty.ObjectVal(known)
			v, diags := expr.Value(m.ctx)
			if diags.HasErrors() || !v.IsWhollyKnown() {
				continue
			}
			known[name] = v
			delete(pending, name)
			progress = true
		}
		if !progress {
			break // what is left refers to something not bound here
		}
	}
	m.ctx.Variables["local"] = cty.ObjectVal(known)
}

// Policy renders the policy document name and parses it for evaluation.
func (m *Module) Policy(name string) (iampolicy.Named, error) {
	doc, err := m.Render(name)
	if err != nil {
		return iampolicy.Named{}, err
	}
	p, err := iampolicy.Parse(doc)
	if err != nil {
		return iampolicy.Named{}, fmt.Errorf("policy %s of %s: %w", name, m.dir, err)
	}
	return iampolicy.Named{Name: filepath.Base(m.dir) + "/" + name, Policy: p}, nil
}

// Render evaluates the policy document name into IAM policy JSON, as the
// AWS provider's aws_iam_policy_document data source does.
func (m *Module) Render(name string) ([]byte, error) {
	base, key, instance := strings.Cut(strings.TrimSuffix(name, "]"), "[")
	b, ok := m.docs[base]
	if !ok {
		return nil, fmt.Errorf("render %s: no data \"aws_iam_policy_document\" %q in %s", name, base, m.dir)
	}
	ctx := m.ctx
	if instance {
		keys, err := m.instances(b)
		if err != nil {
			return nil, fmt.Errorf("render %s: for_each: %w", name, err)
		}
		var k string
		if err := json.Unmarshal([]byte(key), &k); err != nil {
			return nil, fmt.Errorf("render %s: instance key: %w", name, err)
		}
		v, ok := keys[k]
		if !ok {
			return nil, fmt.Errorf("render %s: no instance %q", name, k)
		}
		ctx = m.ctx.NewChild()
		ctx.Variables = map[string]cty.Value{"each": cty.ObjectVal(map[string]cty.Value{"key": cty.StringVal(k), "value": v})}
	}
	saved := m.ctx
	m.ctx = ctx
	defer func() { m.ctx = saved }()
	body := dynblock.Expand(b.Body, m.ctx)
	content, diags := body.Content(&hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "version"}, {Name: "policy_id"}, {Name: "for_each"}},
		Blocks:     []hcl.BlockHeaderSchema{{Type: "statement"}},
	})
	if diags.HasErrors() {
		return nil, fmt.Errorf("render %s: %w", name, diags)
	}
	doc := map[string]any{"Version": "2012-10-17"}
	var stmts []map[string]any
	for _, sb := range content.Blocks {
		st, err := m.statement(sb.Body)
		if err != nil {
			return nil, fmt.Errorf("render %s: %w", name, err)
		}
		stmts = append(stmts, st)
	}
	doc["Statement"] = stmts
	return json.Marshal(doc)
}

var statementSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "sid"}, {Name: "effect"}, {Name: "actions"}, {Name: "not_actions"},
		{Name: "resources"}, {Name: "not_resources"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "principals"}, {Type: "not_principals"}, {Type: "condition"}},
}

func (m *Module) statement(body hcl.Body) (map[string]any, error) {
	content, diags := body.Content(statementSchema)
	if diags.HasErrors() {
		return nil, diags
	}
	st := map[string]any{"Effect": "Allow"}
	for name, a := range content.Attributes {
		v, diags := a.Expr.Value(m.ctx)
		if diags.HasErrors() {
			return nil, fmt.Errorf("%s: %w", name, diags)
		}
		switch name {
		case "sid":
			st["Sid"] = v.AsString()
		case "effect":
			st["Effect"] = v.AsString()
		default:
			list, err := strings_(v)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			st[map[string]string{"actions": "Action", "not_actions": "NotAction", "resources": "Resource", "not_resources": "NotResource"}[name]] = list
		}
	}
	conds := map[string]map[string][]string{}
	for _, b := range content.Blocks {
		attrs, diags := b.Body.JustAttributes()
		if diags.HasErrors() {
			return nil, diags
		}
		vals := map[string]cty.Value{}
		for k, a := range attrs {
			v, diags := a.Expr.Value(m.ctx)
			if diags.HasErrors() {
				return nil, fmt.Errorf("%s.%s: %w", b.Type, k, diags)
			}
			vals[k] = v
		}
		switch b.Type {
		case "condition":
			values, err := strings_(vals["values"])
			if err != nil {
				return nil, fmt.Errorf("condition values: %w", err)
			}
			test, variable := vals["test"].AsString(), vals["variable"].AsString()
			if conds[test] == nil {
				conds[test] = map[string][]string{}
			}
			conds[test][variable] = append(conds[test][variable], values...)
		case "principals", "not_principals":
			ids, err := strings_(vals["identifiers"])
			if err != nil {
				return nil, fmt.Errorf("%s identifiers: %w", b.Type, err)
			}
			key := map[string]string{"principals": "Principal", "not_principals": "NotPrincipal"}[b.Type]
			typ := vals["type"].AsString()
			if typ == "*" {
				st[key] = "*"
				continue
			}
			p, _ := st[key].(map[string][]string)
			if p == nil {
				p = map[string][]string{}
			}
			p[typ] = append(p[typ], ids...)
			st[key] = p
		}
	}
	if len(conds) > 0 {
		st["Condition"] = conds
	}
	return st, nil
}

// strings_ converts a list, set or tuple of strings (or one string).
func strings_(v cty.Value) ([]string, error) {
	if v.IsNull() {
		return nil, nil
	}
	if !v.IsWhollyKnown() {
		return nil, errors.New("value not known")
	}
	if v.Type() == cty.String {
		return []string{v.AsString()}, nil
	}
	if !v.CanIterateElements() {
		return nil, fmt.Errorf("%s is not a list of strings", v.Type().FriendlyName())
	}
	var out []string
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		if e.Type() != cty.String {
			return nil, fmt.Errorf("element of type %s, want string", e.Type().FriendlyName())
		}
		out = append(out, e.AsString())
	}
	return out, nil
}

// functions is the part of Terraform's function library the policies
// and their locals use.
func functions(dir string) map[string]function.Function {
	return map[string]function.Function{
		"concat": stdlib.ConcatFunc, "element": stdlib.ElementFunc, "split": stdlib.SplitFunc,
		"join": stdlib.JoinFunc, "format": stdlib.FormatFunc, "lower": stdlib.LowerFunc,
		"upper": stdlib.UpperFunc, "jsondecode": stdlib.JSONDecodeFunc, "jsonencode": stdlib.JSONEncodeFunc,
		"length": stdlib.LengthFunc, "distinct": stdlib.DistinctFunc, "flatten": stdlib.FlattenFunc,
		"merge": stdlib.MergeFunc, "keys": stdlib.KeysFunc, "values": stdlib.ValuesFunc,
		"lookup": stdlib.LookupFunc, "coalesce": stdlib.CoalesceFunc, "compact": stdlib.CompactFunc,
		"contains": stdlib.ContainsFunc, "replace": stdlib.ReplaceFunc, "trimprefix": stdlib.TrimPrefixFunc,
		"trimsuffix": stdlib.TrimSuffixFunc, "tolist": stdlib.MakeToFunc(cty.List(cty.DynamicPseudoType)),
		"toset": stdlib.MakeToFunc(cty.Set(cty.DynamicPseudoType)), "tostring": stdlib.MakeToFunc(cty.String),
		"sort": stdlib.SortFunc, "setunion": stdlib.SetUnionFunc, "slice": stdlib.SliceFunc,
		"file": function.New(&function.Spec{
			Params: []function.Parameter{{Name: "path", Type: cty.String}},
			Type:   function.StaticReturnType(cty.String),
			Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
				p := args[0].AsString()
				if !filepath.IsAbs(p) {
					p = filepath.Join(dir, p)
				}
				b, err := os.ReadFile(p)
				if err != nil {
					return cty.NilVal, err
				}
				return cty.StringVal(string(b)), nil
			},
		}),
	}
}
