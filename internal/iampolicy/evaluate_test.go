package iampolicy_test

import (
	"strings"
	"testing"

	"github.com/workspaced/workspaced/internal/iampolicy"
)

func named(name, doc string) iampolicy.Named {
	return iampolicy.Named{Name: name, Policy: iampolicy.MustParse(doc)}
}

// Examples from AWS's "Policy evaluation logic" documentation: an explicit
// deny overrides any allow; without an allow the request is implicitly
// denied; an allow in an identity or a resource policy (same account) is
// enough.
func TestEvaluationLogic(t *testing.T) {
	allowAll := named("allow-s3", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}`)
	denyDelete := named("deny-delete", `{"Version":"2012-10-17","Statement":{"Sid":"NoDelete","Effect":"Deny","Action":"s3:DeleteObject","Resource":"arn:aws:s3:::bucket/*"}}`)
	bucketPolicy := named("bucket", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/app"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::bucket/*"}]}`)
	req := func(action string) iampolicy.Request {
		return iampolicy.Request{Principal: "arn:aws:iam::111122223333:role/app", Action: action, Resource: "arn:aws:s3:::bucket/key"}
	}
	tests := []struct {
		name     string
		req      iampolicy.Request
		identity []iampolicy.Named
		resource *iampolicy.Named
		want     iampolicy.Decision
		sid      string
	}{
		{"no policy: implicit deny", req("s3:GetObject"), nil, nil, iampolicy.ImplicitDeny, ""},
		{"identity allow", req("s3:GetObject"), []iampolicy.Named{allowAll}, nil, iampolicy.Allowed, ""},
		{"explicit deny overrides allow", req("s3:DeleteObject"), []iampolicy.Named{allowAll, denyDelete}, nil, iampolicy.ExplicitDeny, "NoDelete"},
		{"deny order does not matter", req("s3:DeleteObject"), []iampolicy.Named{denyDelete, allowAll}, nil, iampolicy.ExplicitDeny, "NoDelete"},
		{"deny of another action does not apply", req("s3:PutObject"), []iampolicy.Named{allowAll, denyDelete}, nil, iampolicy.Allowed, ""},
		{"resource policy allow alone (same account)", req("s3:GetObject"), nil, &bucketPolicy, iampolicy.Allowed, ""},
		{"resource policy of another action", req("s3:PutObject"), nil, &bucketPolicy, iampolicy.ImplicitDeny, ""},
		{"identity deny beats resource allow", req("s3:GetObject"), []iampolicy.Named{named("deny-get", `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"s3:Get*","Resource":"*"}]}`)}, &bucketPolicy, iampolicy.ExplicitDeny, ""},
		{"action match is case-insensitive", req("S3:getobject"), []iampolicy.Named{allowAll}, nil, iampolicy.Allowed, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := iampolicy.Evaluate(tc.req, tc.identity, tc.resource)
			if got.Decision != tc.want || (tc.sid != "" && got.Sid != tc.sid) {
				t.Fatalf("Evaluate = %+v, want %v (sid %q)", got, tc.want, tc.sid)
			}
		})
	}
}

func TestNotActionNotResource(t *testing.T) {
	p := []iampolicy.Named{named("p", `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","NotAction":"iam:*","Resource":"*"},
		{"Effect":"Deny","Action":"s3:*","NotResource":["arn:aws:s3:::ours","arn:aws:s3:::ours/*"]}]}`)}
	tests := []struct {
		action, resource string
		want             iampolicy.Decision
	}{
		{"iam:CreateUser", "*", iampolicy.ImplicitDeny},
		{"ecs:ListTasks", "*", iampolicy.Allowed},
		{"s3:GetObject", "arn:aws:s3:::ours/a/b", iampolicy.Allowed},
		{"s3:GetObject", "arn:aws:s3:::theirs/a", iampolicy.ExplicitDeny},
	}
	for _, tc := range tests {
		if got := iampolicy.Evaluate(iampolicy.Request{Action: tc.action, Resource: tc.resource}, p, nil); got.Decision != tc.want {
			t.Errorf("%s on %s = %v, want %v", tc.action, tc.resource, got.Decision, tc.want)
		}
	}
}

// ARN patterns match part by part: a wildcard never crosses a colon
// between the six parts, but matches slashes in the resource part.
func TestARNMatching(t *testing.T) {
	tests := []struct {
		pattern, arn string
		want         bool
	}{
		{"arn:aws:ecs:*:*:task/cluster/*", "arn:aws:ecs:eu-west-1:123456789012:task/cluster/abc", true},
		{"arn:aws:ecs:*:*:task/cluster/*", "arn:aws:ecs:eu-west-1:123456789012:task/other/abc", false},
		{"arn:aws:ecs:eu-west-1:123456789012:task/*", "arn:aws:ecs:eu-west-1:123456789012:task/cluster/abc", true},
		{"arn:aws:s3:::bucket/prefix/*", "arn:aws:s3:::bucket/prefix/a/b.tar.gz", true},
		{"arn:aws:s3:::bucket/prefix/*", "arn:aws:s3:::bucket/other", false},
		{"arn:aws:sqs:*:123456789012:ws-*", "arn:aws:sqs:us-east-1:123456789012:ws-requested", true},
		{"arn:aws:sqs:*:123456789012:ws-*", "arn:aws:sqs:us-east-1:999999999999:ws-requested", false},
		{"arn:aws:iam::123456789012:role/ws-?", "arn:aws:iam::123456789012:role/ws-a", true},
		{"arn:aws:iam::123456789012:role/ws-?", "arn:aws:iam::123456789012:role/ws-ab", false},
		{"*", "anything", true},
	}
	for _, tc := range tests {
		p := []iampolicy.Named{named("p", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"`+tc.pattern+`"}]}`)}
		got := iampolicy.Evaluate(iampolicy.Request{Action: "x:Y", Resource: tc.arn}, p, nil).Decision == iampolicy.Allowed
		if got != tc.want {
			t.Errorf("%s ~ %s = %v, want %v", tc.pattern, tc.arn, got, tc.want)
		}
	}
}

// Condition semantics from AWS's "Condition operators" and "Multivalued
// context keys" pages: operators and keys are ANDed, values of one key
// ORed; a missing key fails a positive operator and passes a negated one
// or IfExists; ForAllValues passes vacuously on an absent key, ForAnyValue
// fails; Null tests presence.
func TestConditions(t *testing.T) {
	tests := []struct {
		name      string
		condition string
		ctx       map[string][]string
		want      bool
	}{
		{"StringEquals match", `{"StringEquals":{"ecs:cluster":"arn:c"}}`, map[string][]string{"ecs:cluster": {"arn:c"}}, true},
		{"StringEquals other", `{"StringEquals":{"ecs:cluster":"arn:c"}}`, map[string][]string{"ecs:cluster": {"arn:d"}}, false},
		{"StringEquals missing key", `{"StringEquals":{"ecs:cluster":"arn:c"}}`, nil, false},
		{"key names are case-insensitive", `{"StringEquals":{"ECS:Cluster":"arn:c"}}`, map[string][]string{"ecs:cluster": {"arn:c"}}, true},
		{"values ORed", `{"StringEquals":{"ecs:CreateAction":["RunTask","StartTask"]}}`, map[string][]string{"ecs:CreateAction": {"StartTask"}}, true},
		{"keys ANDed", `{"StringEquals":{"a:x":"1","a:y":"2"}}`, map[string][]string{"a:x": {"1"}, "a:y": {"3"}}, false},
		{"operators ANDed", `{"StringEquals":{"a:x":"1"},"Bool":{"aws:SecureTransport":"true"}}`, map[string][]string{"a:x": {"1"}, "aws:SecureTransport": {"false"}}, false},
		{"StringNotEquals missing key is true", `{"StringNotEquals":{"a:x":"1"}}`, nil, true},
		{"StringNotEquals none match", `{"StringNotEquals":{"a:x":["1","2"]}}`, map[string][]string{"a:x": {"3"}}, true},
		{"StringNotEquals one matches", `{"StringNotEquals":{"a:x":["1","2"]}}`, map[string][]string{"a:x": {"2"}}, false},
		{"StringLike wildcard", `{"StringLike":{"s3:prefix":"workspaces/*"}}`, map[string][]string{"s3:prefix": {"workspaces/acme/c1/"}}, true},
		{"StringLike no match", `{"StringLike":{"s3:prefix":"workspaces/*"}}`, map[string][]string{"s3:prefix": {"other/"}}, false},
		{"StringNotLike", `{"StringNotLike":{"s3:prefix":"workspaces/*"}}`, map[string][]string{"s3:prefix": {"other/"}}, true},
		{"StringEqualsIfExists missing", `{"StringEqualsIfExists":{"a:x":"1"}}`, nil, true},
		{"StringEqualsIfExists present other", `{"StringEqualsIfExists":{"a:x":"1"}}`, map[string][]string{"a:x": {"2"}}, false},
		{"ArnEquals", `{"ArnEquals":{"aws:SourceArn":"arn:aws:events:eu-west-1:123456789012:rule/ws-task-state"}}`, map[string][]string{"aws:SourceArn": {"arn:aws:events:eu-west-1:123456789012:rule/ws-task-state"}}, true},
		{"ArnLike", `{"ArnLike":{"aws:SourceArn":"arn:aws:events:*:123456789012:rule/ws-*"}}`, map[string][]string{"aws:SourceArn": {"arn:aws:events:eu-west-1:123456789012:rule/ws-task-state"}}, true},
		{"ArnLike other account", `{"ArnLike":{"aws:SourceArn":"arn:aws:events:*:123456789012:rule/ws-*"}}`, map[string][]string{"aws:SourceArn": {"arn:aws:events:eu-west-1:210987654321:rule/ws-task-state"}}, false},
		{"ArnNotLike missing", `{"ArnNotLike":{"aws:SourceArn":"arn:aws:events:*:*:rule/*"}}`, nil, true},
		{"Null true: key absent", `{"Null":{"aws:RequestTag/workspaced:owner":"true"}}`, nil, true},
		{"Null true: key present", `{"Null":{"aws:RequestTag/workspaced:owner":"true"}}`, map[string][]string{"aws:RequestTag/workspaced:owner": {"k"}}, false},
		{"Null false: key present", `{"Null":{"aws:ResourceTag/x":"false"}}`, map[string][]string{"aws:ResourceTag/x": {"v"}}, true},
		{"Bool unquoted", `{"Bool":{"aws:SecureTransport":true}}`, map[string][]string{"aws:SecureTransport": {"true"}}, true},
		{"Bool missing", `{"Bool":{"aws:SecureTransport":"true"}}`, nil, false},
		// aws:TagKeys is multivalued.
		{"ForAllValues subset", `{"ForAllValues:StringEquals":{"aws:TagKeys":["a","b","c"]}}`, map[string][]string{"aws:TagKeys": {"a", "c"}}, true},
		{"ForAllValues one outside", `{"ForAllValues:StringEquals":{"aws:TagKeys":["a","b"]}}`, map[string][]string{"aws:TagKeys": {"a", "z"}}, false},
		{"ForAllValues absent key passes", `{"ForAllValues:StringEquals":{"aws:TagKeys":["a"]}}`, nil, true},
		{"ForAllValues empty set passes", `{"ForAllValues:StringEquals":{"aws:TagKeys":["a"]}}`, map[string][]string{"aws:TagKeys": {}}, true},
		{"ForAnyValue one inside", `{"ForAnyValue:StringLike":{"aws:TagKeys":["workspaced:*"]}}`, map[string][]string{"aws:TagKeys": {"x", "workspaced:owner"}}, true},
		{"ForAnyValue none inside", `{"ForAnyValue:StringLike":{"aws:TagKeys":["workspaced:*"]}}`, map[string][]string{"aws:TagKeys": {"x"}}, false},
		{"ForAnyValue absent key fails", `{"ForAnyValue:StringEquals":{"aws:TagKeys":["a"]}}`, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := []iampolicy.Named{named("p", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecs:TagResource","Resource":"*","Condition":`+tc.condition+`}]}`)}
			got := iampolicy.Evaluate(iampolicy.Request{Action: "ecs:TagResource", Resource: "arn:x", Context: tc.ctx}, p, nil).Decision == iampolicy.Allowed
			if got != tc.want {
				t.Fatalf("condition %s with %v = %v, want %v", tc.condition, tc.ctx, got, tc.want)
			}
		})
	}
}

// A resource policy (an SQS queue policy) names its principal and may
// carry aws:SourceArn: EventBridge's rule may send, nothing else.
func TestQueuePolicy(t *testing.T) {
	queue := named("queue", `{"Version":"2012-10-17","Statement":[{"Sid":"EventsOnly","Effect":"Allow",
		"Principal":{"Service":"events.amazonaws.com"},"Action":"sqs:SendMessage",
		"Resource":"arn:aws:sqs:eu-west-1:123456789012:ws-task-events",
		"Condition":{"ArnEquals":{"aws:SourceArn":"arn:aws:events:eu-west-1:123456789012:rule/ws-task-state"}}}]}`)
	send := func(service, source string) iampolicy.Decision {
		return iampolicy.Evaluate(iampolicy.Request{Service: service, Action: "sqs:SendMessage",
			Resource: "arn:aws:sqs:eu-west-1:123456789012:ws-task-events",
			Context:  map[string][]string{"aws:SourceArn": {source}}}, nil, &queue).Decision
	}
	if d := send("events.amazonaws.com", "arn:aws:events:eu-west-1:123456789012:rule/ws-task-state"); d != iampolicy.Allowed {
		t.Errorf("the rule's delivery: %v, want allow", d)
	}
	if d := send("events.amazonaws.com", "arn:aws:events:eu-west-1:123456789012:rule/other"); d != iampolicy.ImplicitDeny {
		t.Errorf("another rule: %v, want implicit deny", d)
	}
	if d := send("sns.amazonaws.com", "arn:aws:events:eu-west-1:123456789012:rule/ws-task-state"); d != iampolicy.ImplicitDeny {
		t.Errorf("another service: %v, want implicit deny", d)
	}
}

func TestParseRefusesWhatItCannotEvaluate(t *testing.T) {
	for name, doc := range map[string]string{
		"old version":      `{"Version":"2008-10-17","Statement":[]}`,
		"policy variable":  `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/${aws:username}/*"}]}`,
		"numeric operator": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"NumericLessThan":{"s3:max-keys":"10"}}}]}`,
		"bad effect":       `{"Version":"2012-10-17","Statement":[{"Effect":"Maybe","Action":"s3:*","Resource":"*"}]}`,
		"unknown field":    `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Actions":"x"}]}`,
		"no action":        `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Resource":"*"}]}`,
		"bad set":          `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"ForSome:StringEquals":{"a":"b"}}}]}`,
	} {
		if _, err := iampolicy.Parse([]byte(doc)); err == nil {
			t.Errorf("%s: Parse accepted %s", name, doc)
		}
	}
}

func TestDeniedMessage(t *testing.T) {
	req := iampolicy.Request{Principal: "arn:aws:sts::123456789012:assumed-role/ws-backend/task", Action: "ecs:TagResource", Resource: "arn:aws:ecs:eu-west-1:123456789012:task/c/abc"}
	msg := iampolicy.DeniedMessage(req, iampolicy.Result{Decision: iampolicy.ImplicitDeny})
	want := "User: arn:aws:sts::123456789012:assumed-role/ws-backend/task is not authorized to perform: ecs:TagResource on resource: arn:aws:ecs:eu-west-1:123456789012:task/c/abc because no identity-based policy allows the ecs:TagResource action"
	if msg != want {
		t.Fatalf("message\n%s\nwant\n%s", msg, want)
	}
	if msg := iampolicy.DeniedMessage(req, iampolicy.Result{Decision: iampolicy.ExplicitDeny}); !strings.Contains(msg, "explicit deny") {
		t.Fatalf("explicit deny message %q", msg)
	}
}
