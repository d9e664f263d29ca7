package ecs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"

	"github.com/workspaced/workspaced/proxy/admin"
	"github.com/workspaced/workspaced/workspace"
)

// Limits ECS puts on RunTask and friends.
const (
	maxOverridesJSON  = 8192
	maxDescribeBatch  = 100
	maxStopReasonRune = 1024
)

// Runtime runs workspaces as ECS tasks. It is safe for concurrent use.
type Runtime struct {
	client    *awsecs.Client
	opts      Options
	log       *slog.Logger
	metrics   *metrics
	transport *http.Transport

	// capacityStreak counts consecutive capacity failures (reset by a
	// started task); it shapes CapacityError.RetryAfter.
	capacityStreak atomic.Int32
}

// New returns a Runtime calling ECS with cfg (region, credentials, and
// endpoint: AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_ECS as loaded by
// config.LoadDefaultConfig, or opts.Endpoint). Its retryer is the SDK's
// adaptive mode, so throttling slows the client down instead of failing.
func New(cfg aws.Config, opts Options) (*Runtime, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("ecs runtime: register metrics: %w", err)
	}
	client := awsecs.NewFromConfig(cfg, func(o *awsecs.Options) {
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.Endpoint)
		}
		o.Retryer = retry.NewAdaptiveMode(func(ao *retry.AdaptiveModeOptions) {
			ao.StandardOptions = append(ao.StandardOptions, func(so *retry.StandardOptions) {
				so.MaxAttempts = opts.RetryMaxAttempts
				so.MaxBackoff = opts.RetryMaxBackoff
			})
		})
		o.APIOptions = append(o.APIOptions, m.throttleCounter)
	})
	return &Runtime{
		client:    client,
		opts:      opts,
		log:       opts.Logger.With("component", "runtime_ecs"),
		metrics:   m,
		transport: newTransport(opts),
	}, nil
}

// runTaskInput builds the RunTask request for spec. It is a pure function
// of spec and the options, so a retried Start sends the same parameters
// (ECS answers a reused clientToken with other parameters with a
// ConflictException).
func (r *Runtime) runTaskInput(spec workspace.StartSpec) (*awsecs.RunTaskInput, error) {
	in := &awsecs.RunTaskInput{
		Cluster:        aws.String(r.opts.Cluster),
		TaskDefinition: aws.String(r.opts.TaskDefinition),
		Count:          aws.Int32(1),
		ClientToken:    aws.String(spec.Token),
		StartedBy:      aws.String(r.opts.StartedBy),
		Group:          aws.String(group(spec)),
		NetworkConfiguration: &ecstypes.NetworkConfiguration{AwsvpcConfiguration: &ecstypes.AwsVpcConfiguration{
			Subnets:        r.opts.Subnets,
			SecurityGroups: r.opts.SecurityGroups,
			AssignPublicIp: ecstypes.AssignPublicIpDisabled,
		}},
		// Fill an instance before using another (design basis §8.2): managed
		// scaling then adds instances only when the ones running are full,
		// and fewer instances keep their image caches warm.
		PlacementStrategy: []ecstypes.PlacementStrategy{{
			Type: ecstypes.PlacementStrategyTypeBinpack, Field: aws.String("memory"),
		}},
		Tags:                 tags(spec),
		PropagateTags:        ecstypes.PropagateTagsTaskDefinition,
		EnableECSManagedTags: true,
		Overrides: &ecstypes.TaskOverride{ContainerOverrides: []ecstypes.ContainerOverride{{
			Name: aws.String(r.opts.ProxyContainer),
			Environment: []ecstypes.KeyValuePair{{
				Name:  aws.String(ProxyAdminTokenEnv),
				Value: aws.String(admin.DeriveAdminToken(r.opts.ProxyAdminKey, spec.Token)),
			}},
		}}},
	}
	if len(r.opts.CapacityProviders) > 0 {
		for _, cp := range r.opts.CapacityProviders {
			in.CapacityProviderStrategy = append(in.CapacityProviderStrategy, ecstypes.CapacityProviderStrategyItem{
				CapacityProvider: aws.String(cp.Name), Weight: cp.Weight, Base: cp.Base,
			})
		}
	} else {
		in.LaunchType = ecstypes.LaunchType(r.opts.LaunchType)
	}
	if n := overridesJSONLen(in.Overrides); n > maxOverridesJSON {
		return nil, fmt.Errorf("%w: task overrides are %d characters of JSON, ECS allows %d", workspace.ErrInvalidSpec, n, maxOverridesJSON)
	}
	return in, nil
}

// overridesJSONLen is the length of the overrides as ECS counts it: the
// JSON of the overrides member.
func overridesJSONLen(o *ecstypes.TaskOverride) int {
	type kv struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	}
	type co struct {
		Name        string `json:"name"`
		Environment []kv   `json:"environment,omitempty"`
	}
	var w struct {
		ContainerOverrides []co `json:"containerOverrides"`
	}
	for _, c := range o.ContainerOverrides {
		x := co{Name: aws.ToString(c.Name)}
		for _, e := range c.Environment {
			x.Environment = append(x.Environment, kv{aws.ToString(e.Name), aws.ToString(e.Value)})
		}
		w.ContainerOverrides = append(w.ContainerOverrides, x)
	}
	b, _ := json.Marshal(w)
	return len(b)
}

// Start runs the workspace task for spec, idempotently by spec.Token (the
// RunTask clientToken, valid 24 h per cluster): a retried or concurrent
// Start with the same token returns the same task. It returns once ECS
// accepted the task (PROVISIONING, no IP yet). Errors: ErrInvalidSpec and
// other terminal errors (workspace.IsTerminal), *CapacityError (matches
// workspace.ErrCapacity; retry after its RetryAfter), or a transient error
// worth retrying.
func (r *Runtime) Start(ctx context.Context, spec workspace.StartSpec) (workspace.Info, error) {
	if err := validateSpec(spec); err != nil {
		return workspace.Info{}, workspace.Terminal(err)
	}
	in, err := r.runTaskInput(spec)
	if err != nil {
		return workspace.Info{}, workspace.Terminal(err)
	}
	r.metrics.runTaskCalls.Inc()
	out, err := r.client.RunTask(ctx, in)
	if err != nil {
		code := "other"
		var ae smithy.APIError
		if errors.As(err, &ae) {
			code = ae.ErrorCode()
		}
		r.metrics.runTaskFailures.WithLabelValues(code).Inc()
		err = fmt.Errorf("start workspace %s: run task: %w", spec.Token, r.metrics.apiError("RunTask", err))
		if terminalAPIError(err) {
			return workspace.Info{}, workspace.Terminal(err)
		}
		return workspace.Info{}, err
	}
	if len(out.Failures) > 0 {
		return workspace.Info{}, r.failure(spec, out.Failures[0])
	}
	if len(out.Tasks) == 0 {
		return workspace.Info{}, fmt.Errorf("start workspace %s: run task returned neither a task nor a failure", spec.Token)
	}
	r.capacityStreak.Store(0)
	info := r.info(out.Tasks[0])
	// The response may omit tags; the spec is what the task was tagged with.
	info.Token, info.Conversation, info.Tenant, info.Pool = spec.Token, spec.Conversation, spec.Tenant, spec.Pool
	if info.CreatedAt.IsZero() {
		info.CreatedAt = time.Now()
	}
	r.log.Info("workspace task started", "token", spec.Token, "task_arn", info.ID, "status", info.Status)
	return info, nil
}

// failure maps a RunTask failures[] entry.
func (r *Runtime) failure(spec workspace.StartSpec, f ecstypes.Failure) error {
	reason := aws.ToString(f.Reason)
	r.metrics.runTaskFailures.WithLabelValues(reason).Inc()
	r.log.Warn("run task failure", "token", spec.Token, "reason", reason, "detail", aws.ToString(f.Detail))
	// RESOURCE:* (no instance has the CPU, memory, ports, ENI or GPU now)
	// and AGENT (the chosen instance's agent is disconnected, which ECS
	// documents as part of normal operation, several times an hour) place
	// nothing now and may place later: both are capacity, retried.
	if strings.HasPrefix(reason, "RESOURCE:") || reason == "AGENT" {
		n := r.capacityStreak.Add(1)
		return &CapacityError{Reason: reason, Detail: aws.ToString(f.Detail), RetryAfter: r.capacityBackoff(int(n))}
	}
	return workspace.Terminal(&FailureError{Reason: reason, Detail: aws.ToString(f.Detail), Arn: aws.ToString(f.Arn)})
}

// capacityBackoff is base·2^(n-1) capped at max, with the upper half
// jittered so replicas do not retry in step.
func (r *Runtime) capacityBackoff(n int) time.Duration {
	d := r.opts.CapacityBackoffBase
	for i := 1; i < n && d < r.opts.CapacityBackoffMax; i++ {
		d *= 2
	}
	d = min(d, r.opts.CapacityBackoffMax)
	return d/2 + rand.N(d/2+1)
}

// terminalAPIError reports API errors that retrying cannot fix: bad
// parameters or configuration, permissions, a reused client token.
func terminalAPIError(err error) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.ErrorCode() {
	case "ConflictException", "InvalidParameterException", "ClientException",
		"ClusterNotFoundException", "AccessDeniedException", "UnsupportedFeatureException",
		"PlatformUnknownException", "PlatformTaskDefinitionIncompatibilityException", "BlockedException":
		return true
	}
	return false
}

// Stop stops the task with reason (ECS keeps at most 1024 characters). A
// task that is already stopped, or unknown to ECS, is not an error.
func (r *Runtime) Stop(ctx context.Context, id, reason string) error {
	if rs := []rune(reason); len(rs) > maxStopReasonRune {
		reason = string(rs[:maxStopReasonRune])
	}
	_, err := r.client.StopTask(ctx, &awsecs.StopTaskInput{
		Cluster: aws.String(r.opts.Cluster),
		Task:    aws.String(id),
		Reason:  aws.String(reason),
	})
	if err == nil {
		r.log.Info("workspace task stopped", "task_arn", id, "reason", reason)
		return nil
	}
	var invalid *ecstypes.InvalidParameterException
	if errors.As(err, &invalid) {
		// ECS reports an unknown task this way; so it does other bad
		// parameters. Ask which it is.
		if _, ierr := r.Inspect(ctx, id); errors.Is(ierr, workspace.ErrNotFound) {
			return nil
		}
	}
	return fmt.Errorf("stop workspace %s: %w", id, r.metrics.apiError("StopTask", err))
}

// Inspect describes one task; workspace.ErrNotFound if ECS does not know it
// (stopped tasks stay visible for at least an hour) or another deployment
// started it.
func (r *Runtime) Inspect(ctx context.Context, id string) (workspace.Info, error) {
	tasks, err := r.describe(ctx, []string{id})
	if err != nil {
		return workspace.Info{}, fmt.Errorf("inspect workspace %s: %w", id, err)
	}
	if len(tasks) == 0 || aws.ToString(tasks[0].StartedBy) != r.opts.StartedBy {
		return workspace.Info{}, fmt.Errorf("inspect workspace %s: %w", id, workspace.ErrNotFound)
	}
	return r.info(tasks[0]), nil
}

// describe calls DescribeTasks (with tags) for at most 100 IDs; tasks ECS
// reports MISSING are left out.
func (r *Runtime) describe(ctx context.Context, ids []string) ([]ecstypes.Task, error) {
	out, err := r.client.DescribeTasks(ctx, &awsecs.DescribeTasksInput{
		Cluster: aws.String(r.opts.Cluster),
		Tasks:   ids,
		Include: []ecstypes.TaskField{ecstypes.TaskFieldTags},
	})
	if err != nil {
		var invalid *ecstypes.InvalidParameterException
		if len(ids) == 1 && errors.As(err, &invalid) {
			// A malformed task ID names no task.
			return nil, nil
		}
		return nil, fmt.Errorf("describe tasks: %w", r.metrics.apiError("DescribeTasks", err))
	}
	for _, f := range out.Failures {
		if aws.ToString(f.Reason) != "MISSING" {
			return nil, fmt.Errorf("describe tasks: %s: %s", aws.ToString(f.Arn), aws.ToString(f.Reason))
		}
	}
	return out.Tasks, nil
}

// List returns every task of this deployment whose desired status is
// RUNNING (ListTasks by startedBy, all pages), described in batches of 100.
// Tasks on their way down (desired STOPPED) are not listed.
func (r *Runtime) List(ctx context.Context) ([]workspace.Info, error) {
	var arns []string
	seen := map[string]bool{}
	pages := awsecs.NewListTasksPaginator(r.client, &awsecs.ListTasksInput{
		Cluster:   aws.String(r.opts.Cluster),
		StartedBy: aws.String(r.opts.StartedBy),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list workspaces: %w", r.metrics.apiError("ListTasks", err))
		}
		for _, a := range page.TaskArns {
			if !seen[a] {
				seen[a] = true
				arns = append(arns, a)
			}
		}
	}
	infos := make([]workspace.Info, 0, len(arns))
	for start := 0; start < len(arns); start += maxDescribeBatch {
		batch := arns[start:min(len(arns), start+maxDescribeBatch)]
		tasks, err := r.describe(ctx, batch)
		if err != nil {
			return nil, fmt.Errorf("list workspaces: %w", err)
		}
		for _, t := range tasks {
			if aws.ToString(t.StartedBy) == r.opts.StartedBy {
				infos = append(infos, r.info(t))
			}
		}
	}
	return infos, nil
}

// Ping checks that ECS answers for the cluster with this runtime's
// credentials: one ListTasks of at most one task. Cheap enough for a
// readiness probe (List describes every task).
func (r *Runtime) Ping(ctx context.Context) error {
	_, err := r.client.ListTasks(ctx, &awsecs.ListTasksInput{
		Cluster:    aws.String(r.opts.Cluster),
		StartedBy:  aws.String(r.opts.StartedBy),
		MaxResults: aws.Int32(1),
	})
	if err != nil {
		return fmt.Errorf("ping ecs: %w", r.metrics.apiError("ListTasks", err))
	}
	return nil
}

// Close releases idle connections to agents. The Runtime must not be used
// afterwards.
func (r *Runtime) Close() error {
	r.transport.CloseIdleConnections()
	return nil
}
