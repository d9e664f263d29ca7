// Package iampolicy evaluates AWS IAM policies for the test doubles: the
// ECS double and the middleware in front of the AWS emulator ask it
// whether the role making a call may make it, with the policies the
// Terraform code writes, and fail the call as AWS does when it may not.
//
// It implements the part of the IAM policy language our policies use:
// Allow/Deny with explicit Deny winning, Action/NotAction,
// Resource/NotResource and Principal with wildcards, ARN matching, and
// the condition operators StringEquals, StringNotEquals, StringLike,
// StringNotLike, ArnEquals, ArnLike, ArnNotEquals, ArnNotLike, Null, Bool
// (with IfExists and the ForAnyValue:/ForAllValues: set qualifiers).
// Anything else (policy variables, numeric and date operators) is refused
// when the policy is parsed, so an unsupported policy fails loudly rather
// than evaluating wrongly. The semantics follow AWS's "Policy evaluation
// logic" and "IAM JSON policy elements: Condition operators" pages.
package iampolicy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Policy is one policy document.
type Policy struct {
	Version   string
	Statement []Statement
}

// Statement is one statement of a policy.
type Statement struct {
	Sid          string
	Effect       Effect
	Principal    *Principal
	NotPrincipal *Principal
	Action       []string
	NotAction    []string
	Resource     []string
	NotResource  []string
	Condition    []Condition
}

// Effect is Allow or Deny.
type Effect string

// The two effects.
const (
	Allow Effect = "Allow"
	Deny  Effect = "Deny"
)

// Principal is a resource policy's Principal: "*" (Any), or principals by
// kind ("AWS", "Service", "Federated").
type Principal struct {
	Any   bool
	Kinds map[string][]string
}

// Condition is one operator and key of a Condition block with its
// values (the values are ORed; conditions are ANDed).
type Condition struct {
	Operator string // e.g. "ForAnyValue:StringLike", "ArnEqualsIfExists"
	Key      string // lower-cased: condition keys are case-insensitive
	Values   []string

	set      string // "", "ForAnyValue", "ForAllValues"
	base     string // the operator without qualifiers and IfExists
	ifExists bool
}

// Parse decodes a policy document and refuses what this package cannot
// evaluate.
func Parse(doc []byte) (Policy, error) {
	var raw struct {
		Version   string
		Id        string
		Statement json.RawMessage
	}
	if err := strictDecode(doc, &raw); err != nil {
		return Policy{}, fmt.Errorf("parse policy: %w", err)
	}
	if raw.Version != "2012-10-17" {
		return Policy{}, fmt.Errorf("parse policy: Version %q: only 2012-10-17 is supported", raw.Version)
	}
	var stmts []json.RawMessage
	if t := bytes.TrimSpace(raw.Statement); len(t) > 0 && t[0] == '{' {
		stmts = []json.RawMessage{raw.Statement}
	} else if err := json.Unmarshal(raw.Statement, &stmts); err != nil {
		return Policy{}, fmt.Errorf("parse policy: Statement: %w", err)
	}
	p := Policy{Version: raw.Version}
	for i, s := range stmts {
		st, err := parseStatement(s)
		if err != nil {
			return Policy{}, fmt.Errorf("parse policy: statement %d: %w", i, err)
		}
		p.Statement = append(p.Statement, st)
	}
	return p, nil
}

// MustParse is Parse for policies written in tests; it panics on error.
func MustParse(doc string) Policy {
	p, err := Parse([]byte(doc))
	if err != nil {
		panic(err)
	}
	return p
}

func parseStatement(b json.RawMessage) (Statement, error) {
	var raw struct {
		Sid          string
		Effect       string
		Principal    json.RawMessage
		NotPrincipal json.RawMessage
		Action       stringList
		NotAction    stringList
		Resource     stringList
		NotResource  stringList
		Condition    map[string]map[string]stringList
	}
	if err := strictDecode(b, &raw); err != nil {
		return Statement{}, err
	}
	if bytes.Contains(b, []byte("${")) {
		return Statement{}, errors.New("policy variables are not supported")
	}
	st := Statement{Sid: raw.Sid, Effect: Effect(raw.Effect), Action: raw.Action, NotAction: raw.NotAction,
		Resource: raw.Resource, NotResource: raw.NotResource}
	if st.Effect != Allow && st.Effect != Deny {
		return Statement{}, fmt.Errorf("Effect %q must be Allow or Deny", raw.Effect)
	}
	if (len(st.Action) > 0) == (len(st.NotAction) > 0) {
		return Statement{}, errors.New("exactly one of Action and NotAction is required")
	}
	if len(st.Resource) > 0 && len(st.NotResource) > 0 {
		return Statement{}, errors.New("Resource and NotResource exclude each other")
	}
	var err error
	if st.Principal, err = parsePrincipal(raw.Principal); err != nil {
		return Statement{}, fmt.Errorf("Principal: %w", err)
	}
	if st.NotPrincipal, err = parsePrincipal(raw.NotPrincipal); err != nil {
		return Statement{}, fmt.Errorf("NotPrincipal: %w", err)
	}
	for op, keys := range raw.Condition {
		for key, values := range keys {
			c, err := newCondition(op, key, values)
			if err != nil {
				return Statement{}, err
			}
			st.Condition = append(st.Condition, c)
		}
	}
	return st, nil
}

func parsePrincipal(b json.RawMessage) (*Principal, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var star string
	if json.Unmarshal(b, &star) == nil {
		if star != "*" {
			return nil, fmt.Errorf("%q: a string principal must be \"*\"", star)
		}
		return &Principal{Any: true}, nil
	}
	var kinds map[string]stringList
	if err := json.Unmarshal(b, &kinds); err != nil {
		return nil, err
	}
	p := &Principal{Kinds: map[string][]string{}}
	for k, v := range kinds {
		p.Kinds[k] = v
	}
	return p, nil
}

// supported are the base operators this package evaluates.
var supported = map[string]bool{
	"StringEquals": true, "StringNotEquals": true, "StringLike": true, "StringNotLike": true,
	"StringEqualsIgnoreCase": true, "StringNotEqualsIgnoreCase": true,
	"ArnEquals": true, "ArnLike": true, "ArnNotEquals": true, "ArnNotLike": true,
	"Null": true, "Bool": true,
}

func newCondition(op, key string, values []string) (Condition, error) {
	c := Condition{Operator: op, Key: strings.ToLower(key), Values: values}
	base := op
	if set, rest, ok := strings.Cut(op, ":"); ok {
		if set != "ForAnyValue" && set != "ForAllValues" {
			return c, fmt.Errorf("condition operator %q: unknown set qualifier", op)
		}
		c.set, base = set, rest
	}
	if b, ok := strings.CutSuffix(base, "IfExists"); ok && base != "Null" {
		c.ifExists, base = true, b
	}
	if !supported[base] {
		return c, fmt.Errorf("condition operator %q is not supported", op)
	}
	c.base = base
	return c, nil
}

// stringList decodes a JSON string or array of strings.
type stringList []string

func (l *stringList) UnmarshalJSON(b []byte) error {
	var one any
	if err := json.Unmarshal(b, &one); err != nil {
		return err
	}
	switch v := one.(type) {
	case string:
		*l = []string{v}
		return nil
	case bool:
		*l = []string{fmt.Sprint(v)}
		return nil
	}
	var many []any
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	for _, v := range many {
		switch v := v.(type) {
		case string:
			*l = append(*l, v)
		case bool:
			*l = append(*l, fmt.Sprint(v))
		default:
			return fmt.Errorf("value %v must be a string", v)
		}
	}
	return nil
}

func strictDecode(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
