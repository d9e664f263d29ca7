package ecsdouble

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/workspaced/workspaced/internal/iampolicy"
)

// authorize evaluates every IAM action the call implies for the caller of
// key, in the request context ECS documents for it, and fails the first
// one that is denied as ECS does: AccessDeniedException (HTTP 400) with
// the caller, action and resource named. Without Options.IAM nothing is
// enforced; with it, a key it does not list is denied everything.
func (d *Double) authorize(key, op string, body []byte) error {
	if d.opts.IAM == nil {
		return nil
	}
	p, ok := d.opts.IAM[key]
	if !ok {
		p = iampolicy.Identity{ARN: "arn:aws:iam::" + d.Account + ":user/" + key}
	}
	reqs, err := d.iamRequests(op, body)
	if err != nil {
		return err
	}
	for _, req := range reqs {
		req.Principal = p.ARN
		if res := iampolicy.Evaluate(req, p.Policies, nil); res.Decision != iampolicy.Allowed {
			d.mu.Lock()
			d.denied = append(d.denied, req.Action+" "+req.Resource)
			d.mu.Unlock()
			d.opts.Logf("ecsdouble: IAM %s: %s on %s (%s)", res.Decision, req.Action, req.Resource, p.ARN)
			return &apiError{http.StatusBadRequest, "AccessDeniedException", iampolicy.DeniedMessage(req, res)}
		}
	}
	return nil
}

// Denied lists the calls IAM denied, as "action resource".
func (d *Double) Denied() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.denied...)
}

// iamRequests is what IAM authorizes for one call, per the Service
// Authorization Reference for Amazon ECS: the action, its resource, and
// the condition keys the request carries.
func (d *Double) iamRequests(op string, body []byte) ([]iampolicy.Request, error) {
	cluster := map[string][]string{"ecs:cluster": {d.ClusterArn}}
	taskARN := func(ref string) string {
		if strings.HasPrefix(ref, "arn:") {
			return ref
		}
		return fmt.Sprintf("arn:aws:ecs:%s:%s:task/%s/%s", d.Region, d.Account, d.ClusterName, ref)
	}
	switch op {
	case "RunTask":
		var in runTaskInput
		if err := decodeStrict(body, &in); err != nil {
			return nil, err
		}
		reqs := []iampolicy.Request{{Action: "ecs:RunTask", Resource: d.TaskDefinitionArn, Context: cluster}}
		if len(in.Tags) > 0 {
			// Tagging at launch is authorised as ecs:TagResource on the new
			// task, with ecs:CreateAction = RunTask.
			ctx := tagContext(in.Tags)
			ctx["ecs:CreateAction"] = []string{"RunTask"}
			ctx["ecs:cluster"] = []string{d.ClusterArn}
			reqs = append(reqs, iampolicy.Request{Action: "ecs:TagResource", Resource: taskARN(randomHex(16)), Context: ctx})
		}
		roles := []string{d.opts.ExecutionRoleArn, d.opts.TaskRoleArn}
		if o := in.Overrides; o != nil {
			roles = append(roles, o.ExecutionRoleArn, o.TaskRoleArn)
		}
		for _, role := range roles {
			if role != "" {
				reqs = append(reqs, iampolicy.Request{Action: "iam:PassRole", Resource: role,
					Context: map[string][]string{"iam:PassedToService": {"ecs-tasks.amazonaws.com"}}})
			}
		}
		return reqs, nil
	case "StopTask":
		var in stopTaskInput
		if err := decodeStrict(body, &in); err != nil {
			return nil, err
		}
		return []iampolicy.Request{{Action: "ecs:StopTask", Resource: taskARN(in.Task), Context: cluster}}, nil
	case "DescribeTasks":
		var in describeTasksInput
		if err := decodeStrict(body, &in); err != nil {
			return nil, err
		}
		var reqs []iampolicy.Request
		for _, t := range in.Tasks {
			reqs = append(reqs, iampolicy.Request{Action: "ecs:DescribeTasks", Resource: taskARN(t), Context: cluster})
		}
		return reqs, nil
	case "ListTasks":
		return []iampolicy.Request{{Action: "ecs:ListTasks",
			Resource: fmt.Sprintf("arn:aws:ecs:%s:%s:container-instance/%s/*", d.Region, d.Account, d.ClusterName), Context: cluster}}, nil
	case "TagResource":
		var in tagResourceInput
		if err := decodeStrict(body, &in); err != nil {
			return nil, err
		}
		ctx := tagContext(in.Tags)
		d.mu.Lock()
		if t := d.lookupLocked(in.ResourceArn); t != nil {
			for _, tg := range t.tags {
				ctx["aws:ResourceTag/"+tg.Key] = []string{tg.Value}
			}
		}
		d.mu.Unlock()
		ctx["ecs:cluster"] = []string{d.ClusterArn}
		return []iampolicy.Request{{Action: "ecs:TagResource", Resource: in.ResourceArn, Context: ctx}}, nil
	}
	return []iampolicy.Request{{Action: "ecs:" + op, Resource: "*"}}, nil
}

// tagContext is the aws:RequestTag/… and aws:TagKeys context of tags.
func tagContext(tags []tag) map[string][]string {
	ctx := map[string][]string{}
	keys := make([]string, 0, len(tags))
	for _, t := range tags {
		ctx["aws:RequestTag/"+t.Key] = []string{t.Value}
		keys = append(keys, t.Key)
	}
	ctx["aws:TagKeys"] = keys
	return ctx
}
