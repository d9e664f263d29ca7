package ecs

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/workspaced/workspaced/proxy/admin"
	"github.com/workspaced/workspaced/proxy/mcprule"
	"github.com/workspaced/workspaced/workspace"
)

// Claim record tags, added by RecordClaim (TagResource) when a workspace
// is personalised for a conversation: a warm-pool task is claimed after
// RunTask, so its RunTask tags cannot say whose it is. The workspace cannot
// change its task's tags (it has no AWS credentials).
const (
	TagOwner      = "workspaced:owner"
	TagGeneration = "workspaced:generation"
)

// DefaultProxyAdminPort is the credential-proxy sidecar's admin listener
// (deploy/names.json workspace_task.proxy_admin_port).
const DefaultProxyAdminPort = 9001

// RecordClaim tags ws's task with its claim (conversation, owner, tenant,
// generation). Idempotent; tags replace older values.
func (r *Runtime) RecordClaim(ctx context.Context, ws workspace.Info, c workspace.Claim) error {
	id := ws.ID
	for _, v := range []string{c.Conversation, c.Owner, c.Tenant} {
		if len(v) > 256 || !tagValueRE.MatchString(v) {
			return fmt.Errorf("record claim of %s: %w: %q is not a valid tag value", id, workspace.ErrInvalidSpec, v)
		}
	}
	tags := []ecstypes.Tag{
		{Key: aws.String(TagConversation), Value: aws.String(c.Conversation)},
		{Key: aws.String(TagOwner), Value: aws.String(c.Owner)},
		{Key: aws.String(TagGeneration), Value: aws.String(strconv.FormatInt(c.Generation, 10))},
	}
	if c.Tenant != "" {
		tags = append(tags, ecstypes.Tag{Key: aws.String(TagTenant), Value: aws.String(c.Tenant)})
	}
	if _, err := r.client.TagResource(ctx, &awsecs.TagResourceInput{ResourceArn: aws.String(id), Tags: tags}); err != nil {
		return fmt.Errorf("record claim of %s: %w", id, r.metrics.apiError("TagResource", err))
	}
	return nil
}

// ReadClaim returns ws's claim from its task's tags; false if it has none
// (never personalised, gone, or stopped: StopTask deletes tags).
func (r *Runtime) ReadClaim(ctx context.Context, ws workspace.Info) (workspace.Claim, bool, error) {
	tasks, err := r.describe(ctx, []string{ws.ID})
	if err != nil || len(tasks) == 0 {
		return workspace.Claim{}, false, err
	}
	var c workspace.Claim
	gen := ""
	for _, tg := range tasks[0].Tags {
		v := aws.ToString(tg.Value)
		switch aws.ToString(tg.Key) {
		case TagConversation:
			c.Conversation = v
		case TagOwner:
			c.Owner = v
		case TagTenant:
			c.Tenant = v
		case TagGeneration:
			gen = v
		}
	}
	n, err := strconv.ParseInt(gen, 10, 64)
	if c.Conversation == "" || err != nil {
		return workspace.Claim{}, false, nil
	}
	c.Generation = n
	return c, true, nil
}

// SetProxyRules replaces the MCP rules of the task's credential-proxy
// sidecar through its admin API (http://<task ip>:9001), signing with the
// task's admin token (admin.DeriveAdminToken of the backend key and the
// task's client token; never sent). Rules never appear in logs.
func (r *Runtime) SetProxyRules(ctx context.Context, info workspace.Info, rules []mcprule.Rule) error {
	if info.Token == "" || info.Endpoint == "" {
		return fmt.Errorf("set proxy rules of %s: token and endpoint required", info.ID)
	}
	if _, err := mcprule.Compile(rules); err != nil {
		return fmt.Errorf("set proxy rules of %s: %w: %w", info.ID, workspace.ErrInvalidSpec, err)
	}
	u, err := url.Parse(info.Endpoint)
	if err != nil || u.Hostname() == "" {
		return fmt.Errorf("set proxy rules of %s: endpoint %q: %w", info.ID, info.Endpoint, workspace.ErrInvalidSpec)
	}
	base := "http://" + net.JoinHostPort(u.Hostname(), strconv.Itoa(DefaultProxyAdminPort))
	c := admin.Client{HTTPClient: r.adminHTTP()}
	if err := c.SetRules(ctx, base, admin.DeriveAdminToken(r.opts.ProxyAdminKey, info.Token), rules); err != nil {
		return fmt.Errorf("set proxy rules of %s: %w", info.ID, err)
	}
	return nil
}

// adminHTTP is the client of the proxies' admin APIs: the agents'
// connection pool, a bounded request time.
func (r *Runtime) adminHTTP() *http.Client {
	return &http.Client{Transport: r.transport, Timeout: 10 * time.Second}
}

// Recover has nothing to re-attach on ECS: each task's sidecar holds its
// own rules, and claims are task tags.
func (r *Runtime) Recover(context.Context) (int, error) { return 0, nil }

// PruneClaims has nothing to prune on ECS: a task's tags go with it.
func (r *Runtime) PruneClaims(context.Context) (int, error) { return 0, nil }

// Capabilities: every task runs its own proxy sidecar, and ECS delivers
// task-state events through EventBridge.
func (r *Runtime) Capabilities() workspace.Capabilities { return workspace.Capabilities{} }

var _ workspace.Runtime = (*Runtime)(nil)
