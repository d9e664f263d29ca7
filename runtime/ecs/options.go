package ecs

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults for Options; the names match deploy/names.json and the
// workspace task definition (a test checks they agree).
const (
	DefaultStartedBy             = "workspaced"
	DefaultAgentContainer        = "workspace-agent"
	DefaultProxyContainer        = "credential-proxy"
	DefaultAgentPort             = 9000
	DefaultLaunchType            = "EC2"
	DefaultRetryMaxAttempts      = 8
	DefaultRetryMaxBackoff       = 20 * time.Second
	DefaultDialTimeout           = 5 * time.Second
	DefaultResponseHeaderTimeout = 30 * time.Second
	DefaultCapacityBackoffBase   = 2 * time.Second
	DefaultCapacityBackoffMax    = 60 * time.Second
)

// ProxyAdminTokenEnv is the credential proxy's environment variable that
// receives the per-task admin token (a RunTask container override).
const ProxyAdminTokenEnv = "PROXY_ADMIN_TOKEN"

// CapacityProvider is one entry of a capacity provider strategy.
type CapacityProvider struct {
	Name   string
	Weight int32
	Base   int32
}

// Options configure a Runtime. cmd/ fills them from config.ECS
// (ECS_CLUSTER_NAME, WORKSPACE_TASK_DEFINITION, ECS_WORKSPACE_SUBNETS,
// ECS_WORKSPACE_SECURITY_GROUP, ECS_LAUNCH_TYPE, ECS_CAPACITY_PROVIDER,
// ECS_STARTED_BY, PROXY_ADMIN_KEY).
type Options struct {
	// Cluster is the cluster name or ARN. Required.
	Cluster string
	// TaskDefinition is the workspace task definition: family,
	// family:revision or ARN. Required.
	TaskDefinition string
	// Subnets (1–16) and SecurityGroups (1–5) of the tasks' ENIs. Tasks
	// never get a public IP. Required.
	Subnets        []string
	SecurityGroups []string
	// LaunchType ("EC2") and CapacityProviders are mutually exclusive;
	// with neither, LaunchType defaults to EC2.
	LaunchType        string
	CapacityProviders []CapacityProvider
	// StartedBy marks every task this deployment starts; List finds tasks
	// by it (ListTasks matches it exactly). Default "workspaced". At most
	// 128 of [A-Za-z0-9_/-].
	StartedBy string
	// AgentContainer and ProxyContainer are the task definition's container
	// names; AgentPort is the agent's TCP port.
	AgentContainer string
	ProxyContainer string
	AgentPort      int
	// ProxyAdminKey derives each task's proxy admin token
	// (proxy/admin.DeriveAdminToken of the clientToken). Required: every
	// replica needs the same key.
	ProxyAdminKey []byte
	// Endpoint overrides the ECS endpoint (LocalStack, the test double).
	// Leave empty to use the aws.Config's (AWS_ENDPOINT_URL[_ECS]).
	Endpoint string
	// RetryMaxAttempts and RetryMaxBackoff tune the SDK's adaptive
	// retryer (defaults 8 and 20s).
	RetryMaxAttempts int
	RetryMaxBackoff  time.Duration
	// CapacityBackoffBase and CapacityBackoffMax shape the RetryAfter hint
	// of CapacityError: base·2^(n-1) for the n-th consecutive capacity
	// failure, capped (defaults 2s and 60s).
	CapacityBackoffBase time.Duration
	CapacityBackoffMax  time.Duration
	// DialTimeout and ResponseHeaderTimeout bound reaching the agent;
	// there is no overall timeout (streams are long).
	DialTimeout           time.Duration
	ResponseHeaderTimeout time.Duration
	// Registerer receives the runtime's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Logger receives the runtime's logs (default slog.Default()).
	Logger *slog.Logger
}

// LogValue keeps the admin key out of logs.
func (o Options) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("cluster", o.Cluster),
		slog.String("task_definition", o.TaskDefinition),
		slog.Any("subnets", o.Subnets),
		slog.Any("security_groups", o.SecurityGroups),
		slog.String("launch_type", o.LaunchType),
		slog.String("started_by", o.StartedBy),
		slog.String("proxy_admin_key", "[redacted]"),
	)
}

var startedByRE = regexp.MustCompile(`^[A-Za-z0-9_/-]{1,128}$`)

func (o Options) withDefaults() (Options, error) {
	var errs []error
	if o.Cluster == "" {
		errs = append(errs, errors.New("Cluster is required"))
	}
	if o.TaskDefinition == "" {
		errs = append(errs, errors.New("TaskDefinition is required"))
	}
	if n := len(o.Subnets); n < 1 || n > 16 {
		errs = append(errs, fmt.Errorf("%d Subnets, want 1 to 16", n))
	}
	if n := len(o.SecurityGroups); n < 1 || n > 5 {
		errs = append(errs, fmt.Errorf("%d SecurityGroups, want 1 to 5", n))
	}
	if o.LaunchType != "" && len(o.CapacityProviders) > 0 {
		errs = append(errs, errors.New("LaunchType and CapacityProviders are mutually exclusive"))
	}
	if o.LaunchType == "" && len(o.CapacityProviders) == 0 {
		o.LaunchType = DefaultLaunchType
	}
	if len(o.ProxyAdminKey) == 0 {
		errs = append(errs, errors.New("ProxyAdminKey is required"))
	}
	if o.StartedBy == "" {
		o.StartedBy = DefaultStartedBy
	}
	if !startedByRE.MatchString(o.StartedBy) {
		errs = append(errs, fmt.Errorf("StartedBy %q must be 1-128 of [A-Za-z0-9_/-]", o.StartedBy))
	}
	if o.AgentContainer == "" {
		o.AgentContainer = DefaultAgentContainer
	}
	if o.ProxyContainer == "" {
		o.ProxyContainer = DefaultProxyContainer
	}
	if o.AgentPort == 0 {
		o.AgentPort = DefaultAgentPort
	}
	if o.RetryMaxAttempts == 0 {
		o.RetryMaxAttempts = DefaultRetryMaxAttempts
	}
	if o.RetryMaxBackoff == 0 {
		o.RetryMaxBackoff = DefaultRetryMaxBackoff
	}
	if o.CapacityBackoffBase == 0 {
		o.CapacityBackoffBase = DefaultCapacityBackoffBase
	}
	if o.CapacityBackoffMax == 0 {
		o.CapacityBackoffMax = DefaultCapacityBackoffMax
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.ResponseHeaderTimeout == 0 {
		o.ResponseHeaderTimeout = DefaultResponseHeaderTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if err := errors.Join(errs...); err != nil {
		return o, fmt.Errorf("ecs runtime options: %w", err)
	}
	return o, nil
}
