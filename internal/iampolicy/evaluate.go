package iampolicy

import (
	"fmt"
	"strings"
)

// Request is one API call as IAM sees it.
type Request struct {
	// Principal is the caller's ARN (for messages and resource policies'
	// "AWS" principals); Service names a calling service principal
	// ("events.amazonaws.com") for resource policies.
	Principal string
	Service   string
	// Action is "service:Operation", e.g. "ecs:TagResource".
	Action string
	// Resource is the ARN the action is on ("*" for actions without a
	// resource).
	Resource string
	// Context holds the request's condition keys (case-insensitive),
	// each with its values: one for single-valued keys, any number for
	// multivalued ones (aws:TagKeys).
	Context map[string][]string
}

// Decision is the outcome of an evaluation.
type Decision int

// The three outcomes.
const (
	ImplicitDeny Decision = iota
	Allowed
	ExplicitDeny
)

func (d Decision) String() string {
	return [...]string{"implicit deny", "allow", "explicit deny"}[d]
}

// Result is a Decision and the statement that made it (none for an
// implicit deny).
type Result struct {
	Decision Decision
	// Policy names the policy of the deciding statement (identity or
	// resource); Sid is its Sid.
	Policy, Sid string
}

// Identity is a caller: its ARN (for messages and "AWS" principals) and
// the identity policies attached to it.
type Identity struct {
	ARN      string
	Policies []Named
}

// AllowAll is the policy of an administrator (AdministratorAccess): test
// harnesses set up what the system under test may not.
var AllowAll = MustParse(`{"Version":"2012-10-17","Statement":[{"Sid":"AdministratorAccess","Effect":"Allow","Action":"*","Resource":"*"}]}`)

// Named is a policy with a name, as attached to a role or a resource.
type Named struct {
	Name   string
	Policy Policy
}

// Evaluate decides req against the caller's identity policies and the
// resource's policy (nil if none), within one account: an explicit Deny
// in any of them wins; otherwise an Allow in any of them allows;
// otherwise the request is implicitly denied.
func Evaluate(req Request, identity []Named, resource *Named) Result {
	var allow *Result
	check := func(n Named, isResource bool) *Result {
		for _, st := range n.Policy.Statement {
			if !st.applies(req, isResource) {
				continue
			}
			r := Result{Policy: n.Name, Sid: st.Sid}
			if st.Effect == Deny {
				r.Decision = ExplicitDeny
				return &r
			}
			if allow == nil {
				r.Decision = Allowed
				allow = &r
			}
		}
		return nil
	}
	for _, n := range identity {
		if d := check(n, false); d != nil {
			return *d
		}
	}
	if resource != nil {
		if d := check(*resource, true); d != nil {
			return *d
		}
	}
	if allow != nil {
		return *allow
	}
	return Result{Decision: ImplicitDeny}
}

// DeniedMessage is the message AWS gives with AccessDeniedException for
// res (an implicit or explicit deny).
func DeniedMessage(req Request, res Result) string {
	why := "because no identity-based policy allows the " + req.Action + " action"
	if res.Decision == ExplicitDeny {
		why = "with an explicit deny in an identity-based policy"
	}
	return fmt.Sprintf("User: %s is not authorized to perform: %s on resource: %s %s", req.Principal, req.Action, req.Resource, why)
}

// applies reports whether st matches req.
func (st Statement) applies(req Request, isResource bool) bool {
	if isResource {
		switch {
		case st.Principal != nil && !st.Principal.matches(req):
			return false
		case st.NotPrincipal != nil && st.NotPrincipal.matches(req):
			return false
		case st.Principal == nil && st.NotPrincipal == nil:
			return false // a resource policy statement names its principal
		}
	}
	if len(st.Action) > 0 && !anyMatch(st.Action, req.Action, matchAction) {
		return false
	}
	if len(st.NotAction) > 0 && anyMatch(st.NotAction, req.Action, matchAction) {
		return false
	}
	if len(st.Resource) > 0 && !anyMatch(st.Resource, req.Resource, matchARN) {
		return false
	}
	if len(st.NotResource) > 0 && anyMatch(st.NotResource, req.Resource, matchARN) {
		return false
	}
	for _, c := range st.Condition {
		if !c.holds(req.Context) {
			return false
		}
	}
	return true
}

func (p Principal) matches(req Request) bool {
	if p.Any {
		return true
	}
	for _, v := range p.Kinds["Service"] {
		if req.Service != "" && v == req.Service {
			return true
		}
	}
	for _, v := range p.Kinds["AWS"] {
		if v == "*" || (req.Principal != "" && (v == req.Principal || matchARN(v, req.Principal))) {
			return true
		}
	}
	return false
}

func anyMatch(patterns []string, s string, match func(pattern, s string) bool) bool {
	for _, p := range patterns {
		if match(p, s) {
			return true
		}
	}
	return false
}

// matchAction matches "service:Operation" patterns case-insensitively.
func matchAction(pattern, action string) bool {
	return glob(strings.ToLower(pattern), strings.ToLower(action))
}

// matchARN matches an ARN pattern: "*" matches anything; otherwise the
// six colon-separated parts match one by one (the resource part may hold
// colons), each with * and ? wildcards that do not cross parts.
func matchARN(pattern, arn string) bool {
	if pattern == "*" {
		return true
	}
	pp, ap := strings.SplitN(pattern, ":", 6), strings.SplitN(arn, ":", 6)
	if len(pp) != 6 || len(ap) != 6 {
		return pattern == arn
	}
	for i := range pp {
		if !glob(pp[i], ap[i]) {
			return false
		}
	}
	return true
}

// glob matches * (any run, including /) and ? (one character).
func glob(pattern, s string) bool {
	if !strings.ContainsAny(pattern, "*?") {
		return pattern == s
	}
	return globRunes([]rune(pattern), []rune(s))
}

func globRunes(p, s []rune) bool {
	for len(p) > 0 {
		switch p[0] {
		case '*':
			for len(p) > 0 && p[0] == '*' {
				p = p[1:]
			}
			if len(p) == 0 {
				return true
			}
			for i := 0; i <= len(s); i++ {
				if globRunes(p, s[i:]) {
					return true
				}
			}
			return false
		case '?':
			if len(s) == 0 {
				return false
			}
		default:
			if len(s) == 0 || s[0] != p[0] {
				return false
			}
		}
		p, s = p[1:], s[1:]
	}
	return len(s) == 0
}

// holds evaluates one condition against the request context.
func (c Condition) holds(ctx map[string][]string) bool {
	vals, present := lookup(ctx, c.Key)
	switch c.base {
	case "Null":
		want := len(c.Values) > 0 && strings.EqualFold(c.Values[0], "true")
		return want == !present
	}
	negated := strings.Contains(c.base, "Not")
	switch c.set {
	case "ForAllValues":
		// True when every request value matches a policy value; an
		// absent or empty key matches vacuously.
		for _, v := range vals {
			if !c.matchOne(v) {
				return false
			}
		}
		return true
	case "ForAnyValue":
		for _, v := range vals {
			if c.matchOne(v) {
				return true
			}
		}
		return false
	}
	if !present {
		// A missing key does not match: the condition is false, unless
		// the operator is negated or IfExists.
		return c.ifExists || negated
	}
	// Single-valued operators on a request value: positive operators are
	// true if the value matches any policy value, negated ones if it
	// matches none.
	for _, v := range vals {
		if !c.matchOne(v) {
			return false
		}
	}
	return true
}

// matchOne applies the operator to one request value against the policy
// values (ORed; for a negated operator, true when none matches).
func (c Condition) matchOne(v string) bool {
	var match func(p, v string) bool
	switch strings.Replace(c.base, "Not", "", 1) {
	case "StringEquals":
		match = func(p, v string) bool { return p == v }
	case "StringEqualsIgnoreCase":
		match = strings.EqualFold
	case "StringLike":
		match = glob
	case "ArnEquals", "ArnLike":
		match = matchARN
	case "Bool":
		match = strings.EqualFold
	}
	any := false
	for _, p := range c.Values {
		if match(p, v) {
			any = true
			break
		}
	}
	if strings.Contains(c.base, "Not") {
		return !any
	}
	return any
}

// lookup finds key (lower-cased) in ctx, whose keys may be in any case.
func lookup(ctx map[string][]string, key string) ([]string, bool) {
	for k, v := range ctx {
		if strings.ToLower(k) == key {
			return v, true
		}
	}
	return nil, false
}
