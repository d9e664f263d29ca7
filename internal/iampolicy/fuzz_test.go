package iampolicy_test

import (
	"testing"

	"github.com/workspaced/workspaced/internal/iampolicy"
)

// FuzzParseEvaluate: Parse never panics, and a policy it accepts evaluates
// any request without panicking, an explicit Deny statement that matches
// everything always winning.
func FuzzParseEvaluate(f *testing.F) {
	f.Add(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecs:*","Resource":"*","Condition":{"StringEquals":{"ecs:cluster":"c"}}}]}`, "ecs:RunTask", "arn:aws:ecs:r:1:task/c/x", "c")
	f.Add(`{"Version":"2012-10-17","Statement":{"Effect":"Deny","NotAction":"s3:Get*","NotResource":"arn:aws:s3:::b/*"}}`, "s3:PutObject", "arn:aws:s3:::b/k", "")
	f.Add(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"sqs:*","Resource":"*","Condition":{"ForAllValues:StringLike":{"aws:TagKeys":["a*"]},"Null":{"x":"true"}}}]}`, "sqs:SendMessage", "*", "ab")
	f.Fuzz(func(t *testing.T, doc, action, resource, value string) {
		p, err := iampolicy.Parse([]byte(doc))
		if err != nil {
			return
		}
		ctx := map[string][]string{"ecs:cluster": {value}, "aws:TagKeys": {value, value + "x"}}
		req := iampolicy.Request{Action: action, Resource: resource, Context: ctx}
		_ = iampolicy.Evaluate(req, []iampolicy.Named{{Name: "p", Policy: p}}, nil)
		deny := iampolicy.MustParse(`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}`)
		if got := iampolicy.Evaluate(req, []iampolicy.Named{{Name: "p", Policy: p}, {Name: "deny", Policy: deny}}, nil); got.Decision != iampolicy.ExplicitDeny {
			t.Fatalf("a Deny of everything did not win: %+v", got)
		}
	})
}
