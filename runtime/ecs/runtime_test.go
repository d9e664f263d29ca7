package ecs_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/workspaced/workspaced/internal/ecsdouble"
	"github.com/workspaced/workspaced/proxy/admin"
	"github.com/workspaced/workspaced/runtime/ecs"
	"github.com/workspaced/workspaced/workspace"
)

// runTaskRequest is the part of a RunTask body the tests check, decoded
// from what the double received on the wire.
type runTaskRequest struct {
	Cluster                  string `json:"cluster"`
	TaskDefinition           string `json:"taskDefinition"`
	Count                    int    `json:"count"`
	ClientToken              string `json:"clientToken"`
	StartedBy                string `json:"startedBy"`
	Group                    string `json:"group"`
	LaunchType               string `json:"launchType"`
	PropagateTags            string `json:"propagateTags"`
	CapacityProviderStrategy []struct {
		CapacityProvider string `json:"capacityProvider"`
		Weight           int    `json:"weight"`
		Base             int    `json:"base"`
	} `json:"capacityProviderStrategy"`
	NetworkConfiguration struct {
		AwsvpcConfiguration struct {
			Subnets        []string `json:"subnets"`
			SecurityGroups []string `json:"securityGroups"`
			AssignPublicIP string   `json:"assignPublicIp"`
		} `json:"awsvpcConfiguration"`
	} `json:"networkConfiguration"`
	Tags []struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	} `json:"tags"`
	Overrides struct {
		ContainerOverrides []struct {
			Name        string `json:"name"`
			Environment []struct {
				Name  string `json:"name"`
				Value string `json:"value"`
			} `json:"environment"`
		} `json:"containerOverrides"`
	} `json:"overrides"`
}

func TestRunTaskParameters(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		spec      func(tok string) workspace.StartSpec
		mod       func(*ecs.Options)
		wantGroup string
		wantTags  map[string]string
		wantLT    string
		wantCP    string
	}{
		{
			name: "conversation",
			spec: func(tok string) workspace.StartSpec {
				return workspace.StartSpec{Token: tok, Conversation: "conv-1", Tenant: "acme"}
			},
			wantGroup: "conversation:conv-1",
			wantTags:  map[string]string{ecs.TagConversation: "conv-1", ecs.TagTenant: "acme", ecs.TagPool: "false"},
			wantLT:    "EC2",
		},
		{
			name: "pool with capacity provider",
			spec: func(tok string) workspace.StartSpec { return workspace.StartSpec{Token: tok, Pool: true} },
			mod: func(o *ecs.Options) {
				o.CapacityProviders = []ecs.CapacityProvider{{Name: "workspaces-asg", Weight: 1}}
			},
			wantGroup: "pool",
			wantTags:  map[string]string{ecs.TagPool: "true"},
			wantCP:    "workspaces-asg",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var mods []func(*ecs.Options)
			if tc.mod != nil {
				mods = append(mods, tc.mod)
			}
			f := newFixture(t, ecsdouble.Options{}, mods...)
			tok := token(t)
			spec := tc.spec(tok)
			info, err := f.rt.Start(testCtx(t), spec)
			if err != nil {
				t.Fatalf("Start: %v", err)
			}
			if info.Status != workspace.StatusProvisioning || info.Token != tok || info.Pool != spec.Pool || info.Conversation != spec.Conversation || info.Endpoint != "" {
				t.Errorf("Start = %+v, want a PROVISIONING task without endpoint for %+v", info, spec)
			}
			snap, ok := f.d.Task(info.ID)
			if !ok {
				t.Fatalf("the double has no task %s", info.ID)
			}
			var req runTaskRequest
			if err := json.Unmarshal(snap.Request, &req); err != nil {
				t.Fatalf("decode RunTask body: %v", err)
			}
			vpc := req.NetworkConfiguration.AwsvpcConfiguration
			switch {
			case req.Cluster != f.d.ClusterName, req.TaskDefinition != f.d.Family, req.Count != 1:
				t.Errorf("cluster/taskDefinition/count = %q/%q/%d", req.Cluster, req.TaskDefinition, req.Count)
			case req.ClientToken != tok:
				t.Errorf("clientToken = %q, want the spec token %q", req.ClientToken, tok)
			case req.StartedBy != ecs.DefaultStartedBy:
				t.Errorf("startedBy = %q", req.StartedBy)
			case req.Group != tc.wantGroup:
				t.Errorf("group = %q, want %q", req.Group, tc.wantGroup)
			case fmt.Sprint(vpc.Subnets) != "[subnet-0a1b2c subnet-0d4e5f]" || fmt.Sprint(vpc.SecurityGroups) != "[sg-0123abcd]" || vpc.AssignPublicIP != "DISABLED":
				t.Errorf("awsvpcConfiguration = %+v", vpc)
			case req.PropagateTags != "TASK_DEFINITION":
				t.Errorf("propagateTags = %q", req.PropagateTags)
			}
			if req.LaunchType != tc.wantLT {
				t.Errorf("launchType = %q, want %q", req.LaunchType, tc.wantLT)
			}
			if tc.wantCP != "" && (len(req.CapacityProviderStrategy) != 1 || req.CapacityProviderStrategy[0].CapacityProvider != tc.wantCP) {
				t.Errorf("capacityProviderStrategy = %+v, want %s", req.CapacityProviderStrategy, tc.wantCP)
			}
			if tc.wantCP == "" && len(req.CapacityProviderStrategy) != 0 {
				t.Errorf("capacityProviderStrategy = %+v with a launch type", req.CapacityProviderStrategy)
			}
			gotTags := map[string]string{}
			for _, tg := range req.Tags {
				gotTags[tg.Key] = tg.Value
			}
			tc.wantTags[ecs.TagToken] = tok
			for k, v := range tc.wantTags {
				if gotTags[k] != v {
					t.Errorf("tag %s = %q, want %q (tags %v)", k, gotTags[k], v, gotTags)
				}
			}
			if snap.Group != tc.wantGroup || snap.StartedBy != ecs.DefaultStartedBy || snap.ClientToken != tok {
				t.Errorf("double recorded group %q startedBy %q token %q", snap.Group, snap.StartedBy, snap.ClientToken)
			}
			checkOverrides(t, req, snap, tok)
		})
	}
}

// checkOverrides: exactly one override, on the proxy container, carrying
// the derived admin token; the agent's environment has no such secret.
func checkOverrides(t *testing.T, req runTaskRequest, snap ecsdouble.TaskSnapshot, tok string) {
	t.Helper()
	co := req.Overrides.ContainerOverrides
	if len(co) != 1 || co[0].Name != ecs.DefaultProxyContainer {
		t.Fatalf("containerOverrides = %+v, want one for %s", co, ecs.DefaultProxyContainer)
	}
	want := admin.DeriveAdminToken(testAdminKey, tok)
	if len(co[0].Environment) != 1 || co[0].Environment[0].Name != ecs.ProxyAdminTokenEnv || co[0].Environment[0].Value != want {
		t.Errorf("proxy override environment = %+v, want only %s", co[0].Environment, ecs.ProxyAdminTokenEnv)
	}
	if got := snap.Env[ecs.DefaultProxyContainer][ecs.ProxyAdminTokenEnv]; got != want {
		t.Errorf("proxy container env %s = %q, want the derived token", ecs.ProxyAdminTokenEnv, got)
	}
	for k, v := range snap.Env[ecs.DefaultAgentContainer] {
		if k == ecs.ProxyAdminTokenEnv || v == want {
			t.Errorf("the agent container's environment carries the admin token (%s)", k)
		}
	}
}

func TestStartIdempotentAcrossRestart(t *testing.T) {
	t.Parallel()
	f := newFixture(t, ecsdouble.Options{})
	spec := workspace.StartSpec{Token: token(t), Conversation: "conv-2"}
	first, err := f.rt.Start(testCtx(t), spec)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	again, err := f.rt.Start(testCtx(t), spec)
	if err != nil {
		t.Fatalf("second Start: %v", err)
	}
	// A backend that crashed after RunTask and before recording anything
	// comes back with the same command, hence the same token.
	restarted, _ := newRuntime(t, f.d)
	third, err := restarted.Start(testCtx(t), spec)
	if err != nil {
		t.Fatalf("Start after restart: %v", err)
	}
	if again.ID != first.ID || third.ID != first.ID {
		t.Fatalf("Starts with one token gave %s, %s, %s; want one task", first.ID, again.ID, third.ID)
	}
	if n := len(f.d.Tasks()); n != 1 {
		t.Fatalf("the double runs %d tasks, want 1", n)
	}
	if n := f.d.Calls("RunTask"); n < 3 {
		t.Errorf("RunTask calls = %d, want 3 (idempotency is ECS's, not a local cache)", n)
	}
}

func TestStartConcurrentSameToken(t *testing.T) {
	t.Parallel()
	f := newFixture(t, ecsdouble.Options{})
	spec := workspace.StartSpec{Token: token(t), Conversation: "conv-c"}
	const n = 8
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			info, err := f.rt.Start(testCtx(t), spec)
			if err != nil {
				t.Errorf("Start %d: %v", i, err)
			}
			ids[i] = info.ID
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("concurrent Starts gave %v", ids)
		}
	}
	if n := len(f.d.Tasks()); n != 1 {
		t.Fatalf("the double runs %d tasks, want 1", n)
	}
}

func TestStartConflictIsTerminal(t *testing.T) {
	t.Parallel()
	f := newFixture(t, ecsdouble.Options{})
	tok := token(t)
	if _, err := f.rt.Start(testCtx(t), workspace.StartSpec{Token: tok, Conversation: "a"}); err != nil {
		t.Fatalf("Start: %v", err)
	}
	_, err := f.rt.Start(testCtx(t), workspace.StartSpec{Token: tok, Conversation: "b"})
	var conflict *ecstypes.ConflictException
	if !errors.As(err, &conflict) || !workspace.IsTerminal(err) || errors.Is(err, workspace.ErrCapacity) {
		t.Fatalf("Start with a reused token and other parameters = %v, want a terminal ConflictException", err)
	}
	if got := counter(t, f.reg, "workspaced_ecs_run_task_failures_total", map[string]string{"reason": "ConflictException"}); got != 1 {
		t.Errorf("run_task_failures_total{reason=ConflictException} = %v, want 1", got)
	}
}

// TestStartInvalidParameterIsTerminal: a parameter ECS rejects (here a
// subnet it cannot find) is an InvalidParameterException, which retrying
// cannot fix: terminal, counted by its code, no task.
func TestStartInvalidParameterIsTerminal(t *testing.T) {
	t.Parallel()
	f := newFixture(t, ecsdouble.Options{}, func(o *ecs.Options) { o.Subnets = []string{"subnet-GONE"} })
	_, err := f.rt.Start(testCtx(t), workspace.StartSpec{Token: token(t), Conversation: "p"})
	var ipe *ecstypes.InvalidParameterException
	if !errors.As(err, &ipe) || !workspace.IsTerminal(err) || errors.Is(err, workspace.ErrCapacity) {
		t.Fatalf("Start with a subnet ECS cannot find = %v, want a terminal InvalidParameterException", err)
	}
	if got := counter(t, f.reg, "workspaced_ecs_run_task_failures_total", map[string]string{"reason": "InvalidParameterException"}); got != 1 {
		t.Errorf("run_task_failures_total{reason=InvalidParameterException} = %v, want 1", got)
	}
	if n := len(f.d.Tasks()); n != 0 {
		t.Errorf("%d tasks", n)
	}
}

func TestStartCapacityFailureIsRetryable(t *testing.T) {
	t.Parallel()
	f := newFixture(t, ecsdouble.Options{Capacity: 1})
	ctx := testCtx(t)
	a, err := f.rt.Start(ctx, workspace.StartSpec{Token: token(t), Conversation: "a"})
	if err != nil {
		t.Fatalf("first Start: %v", err)
	}
	spec := workspace.StartSpec{Token: token(t), Conversation: "b"}
	var retryAfter []int64
	for range 3 {
		_, err = f.rt.Start(ctx, spec)
		var ce *ecs.CapacityError
		if !errors.Is(err, workspace.ErrCapacity) || workspace.IsTerminal(err) || !errors.As(err, &ce) {
			t.Fatalf("Start beyond capacity = %v, want a retryable ErrCapacity", err)
		}
		if ce.Reason != "RESOURCE:MEMORY" || ce.RetryAfter <= 0 {
			t.Errorf("CapacityError = %+v", ce)
		}
		retryAfter = append(retryAfter, int64(ce.RetryAfter))
	}
	if retryAfter[2] < int64(ecs.DefaultCapacityBackoffBase) {
		t.Errorf("third consecutive capacity failure hints %v, want at least the base backoff grown", retryAfter)
	}
	if got := counter(t, f.reg, "workspaced_ecs_run_task_failures_total", map[string]string{"reason": "RESOURCE:MEMORY"}); got != 3 {
		t.Errorf("run_task_failures_total{reason=RESOURCE:MEMORY} = %v, want 3", got)
	}
	if got := counter(t, f.reg, "workspaced_ecs_run_task_calls_total", nil); got != 4 {
		t.Errorf("run_task_calls_total = %v, want 4", got)
	}
	if n := len(f.d.Tasks()); n != 1 {
		t.Fatalf("capacity failures started tasks: %d", n)
	}
	// Capacity frees up; the same token now starts the task.
	if err := f.rt.Stop(ctx, a.ID, "make room"); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, err := f.d.WaitStatus(ctx, a.ID, "STOPPED"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.rt.Start(ctx, spec); err != nil {
		t.Fatalf("Start after capacity freed: %v", err)
	}
}

// TestStartFailureReasons maps each failures[] reason the double answers
// as ECS does (RESOURCE:MEMORY beyond capacity: TestStartCapacityFailureIsRetryable).
// RESOURCE:ENI and AGENT place nothing now but may later: retryable
// capacity, and once the cause is gone the same spec starts its task.
// ATTRIBUTE (a placement constraint no instance meets) and MISSING are
// terminal.
func TestStartFailureReasons(t *testing.T) {
	t.Parallel()
	tests := []struct {
		reason   string
		opts     ecsdouble.Options
		cause    func(*ecsdouble.Double) // makes the next RunTask fail
		relieve  func(*ecsdouble.Double) // nil: terminal
		capacity bool
	}{
		{"RESOURCE:ENI", ecsdouble.Options{ENIs: 1}, nil, nil, true},
		{"AGENT", ecsdouble.Options{}, func(d *ecsdouble.Double) { d.SetAgentConnected(false) },
			func(d *ecsdouble.Double) { d.SetAgentConnected(true) }, true},
		{"ATTRIBUTE", ecsdouble.Options{}, func(d *ecsdouble.Double) { d.FailNext("ATTRIBUTE") }, nil, false},
		{"MISSING", ecsdouble.Options{}, func(d *ecsdouble.Double) { d.FailNext("MISSING") }, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.reason, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, tc.opts)
			ctx := testCtx(t)
			var first workspace.Info
			if tc.cause != nil {
				tc.cause(f.d)
			} else { // the one ENI slot goes to a first task
				var err error
				if first, err = f.rt.Start(ctx, workspace.StartSpec{Token: token(t), Conversation: "first"}); err != nil {
					t.Fatalf("first Start: %v", err)
				}
			}
			spec := workspace.StartSpec{Token: token(t), Conversation: "x"}
			_, err := f.rt.Start(ctx, spec)
			if got := counter(t, f.reg, "workspaced_ecs_run_task_failures_total", map[string]string{"reason": tc.reason}); got != 1 {
				t.Errorf("run_task_failures_total{reason=%s} = %v, want 1", tc.reason, got)
			}
			if !tc.capacity {
				var fe *ecs.FailureError
				if !workspace.IsTerminal(err) || errors.Is(err, workspace.ErrCapacity) || !errors.As(err, &fe) || fe.Reason != tc.reason {
					t.Fatalf("Start with failure %s = %v, want a terminal FailureError", tc.reason, err)
				}
				return
			}
			var ce *ecs.CapacityError
			if !errors.Is(err, workspace.ErrCapacity) || workspace.IsTerminal(err) || !errors.As(err, &ce) || ce.Reason != tc.reason || ce.RetryAfter <= 0 {
				t.Fatalf("Start with failure %s = %v, want a retryable CapacityError", tc.reason, err)
			}
			if tc.relieve != nil {
				tc.relieve(f.d)
			} else {
				if err := f.rt.Stop(ctx, first.ID, "make room"); err != nil {
					t.Fatal(err)
				}
				if _, err := f.d.WaitStatus(ctx, first.ID, "STOPPED"); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := f.rt.Start(ctx, spec); err != nil {
				t.Fatalf("Start once %s is gone: %v", tc.reason, err)
			}
		})
	}
}

func TestStartInvalidSpec(t *testing.T) {
	t.Parallel()
	f := newFixture(t, ecsdouble.Options{})
	for _, spec := range []workspace.StartSpec{
		{Token: "", Conversation: "a"},
		{Token: "bad/token", Conversation: "a"},
		{Token: "ok", Pool: true, Conversation: "a"},
		{Token: "ok"},
		{Token: "ok", Conversation: "a", Tenant: "semi;colon"},
		// One past the longest values TestRequestsWithinECSLimits starts.
		{Token: strings.Repeat("t", 65), Conversation: "a"},
		{Token: "ok", Conversation: strings.Repeat("c", 129)},
		{Token: "ok", Conversation: "a", Tenant: strings.Repeat("t", 129)},
		{Token: "ok", Conversation: "a", Tenant: "two words"},
	} {
		_, err := f.rt.Start(testCtx(t), spec)
		if !errors.Is(err, workspace.ErrInvalidSpec) || !workspace.IsTerminal(err) {
			t.Errorf("Start(%+v) = %v, want a terminal ErrInvalidSpec", spec, err)
		}
	}
	if n := f.d.Calls("RunTask"); n != 0 {
		t.Errorf("invalid specs reached ECS %d times", n)
	}
}

func TestThrottlingIsAbsorbed(t *testing.T) {
	t.Parallel()
	t.Run("injected", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, ecsdouble.Options{})
		f.d.ThrottleNext(3)
		info, err := f.rt.Start(testCtx(t), workspace.StartSpec{Token: token(t), Conversation: "t"})
		if err != nil {
			t.Fatalf("Start through 3 throttles: %v", err)
		}
		if got := f.d.Throttled("RunTask"); got != 3 {
			t.Errorf("the double throttled %d RunTasks, want 3", got)
		}
		if got := counter(t, f.reg, "workspaced_ecs_throttled_attempts_total", map[string]string{"operation": "RunTask"}); got != 3 {
			t.Errorf("throttled_attempts_total{operation=RunTask} = %v, want 3", got)
		}
		if n := len(f.d.Tasks()); n != 1 || f.d.Tasks()[0].Arn != info.ID {
			t.Errorf("tasks = %d, want the one started", n)
		}
	})
	t.Run("rate", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, ecsdouble.Options{RateLimit: 20, Burst: 5})
		const n = 30
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := f.rt.Start(testCtx(t), workspace.StartSpec{Token: fmt.Sprintf("rate%02d", i), Conversation: "r"}); err != nil {
					t.Errorf("Start %d: %v", i, err)
				}
			}()
		}
		wg.Wait()
		if got := len(f.d.Tasks()); got != n {
			t.Fatalf("%d tasks after %d throttled Starts, want %d (none lost, none doubled)", got, n, n)
		}
		t.Logf("throttled %d of %d RunTask attempts", f.d.Throttled("RunTask"), f.d.Calls("RunTask"))
	})
}

func TestInspect(t *testing.T) {
	t.Parallel()
	for _, attType := range []string{"ElasticNetworkInterface", "eni"} {
		t.Run(attType, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, ecsdouble.Options{DescribeAttachmentType: attType})
			ctx := testCtx(t)
			spec := workspace.StartSpec{Token: token(t), Conversation: "conv-i", Tenant: "acme"}
			started, err := f.rt.Start(ctx, spec)
			if err != nil {
				t.Fatalf("Start: %v", err)
			}
			snap, err := f.d.WaitStatus(ctx, started.ID, "RUNNING")
			if err != nil {
				t.Fatal(err)
			}
			got, err := f.rt.Inspect(ctx, started.ID)
			if err != nil {
				t.Fatalf("Inspect: %v", err)
			}
			want := "http://" + snap.IP + ":9000"
			if got.Status != workspace.StatusRunning || got.Endpoint != want || got.Token != spec.Token ||
				got.Conversation != spec.Conversation || got.Tenant != spec.Tenant || got.Pool || got.CreatedAt.IsZero() {
				t.Errorf("Inspect = %+v, want RUNNING at %s for %+v", got, want, spec)
			}
		})
	}
}

func TestInspectNotFound(t *testing.T) {
	t.Parallel()
	f := newFixture(t, ecsdouble.Options{})
	ctx := testCtx(t)
	unknown := fmt.Sprintf("arn:aws:ecs:%s:%s:task/%s/0123456789abcdef0123456789abcdef", f.d.Region, f.d.Account, f.d.ClusterName)
	if _, err := f.rt.Inspect(ctx, unknown); !errors.Is(err, workspace.ErrNotFound) {
		t.Errorf("Inspect(unknown) = %v, want ErrNotFound", err)
	}
	// A task another deployment (startedBy) started is not ours.
	other, _ := newRuntime(t, f.d, func(o *ecs.Options) { o.StartedBy = "workspaced-staging" })
	info, err := other.Start(ctx, workspace.StartSpec{Token: token(t), Conversation: "o"})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if _, err := f.rt.Inspect(ctx, info.ID); !errors.Is(err, workspace.ErrNotFound) {
		t.Errorf("Inspect(other deployment's task) = %v, want ErrNotFound", err)
	}
	if all, err := f.rt.List(ctx); err != nil || len(all) != 0 {
		t.Errorf("List = %d entries, %v; want none of the other deployment's", len(all), err)
	}
}

func TestListBatches(t *testing.T) {
	t.Parallel()
	f := newFixture(t, ecsdouble.Options{})
	ctx := testCtx(t)
	const n = 205
	want := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			spec := workspace.StartSpec{Token: fmt.Sprintf("list%03d", i), Conversation: fmt.Sprintf("c%03d", i)}
			if i%5 == 0 {
				spec = workspace.StartSpec{Token: spec.Token, Pool: true}
			}
			info, err := f.rt.Start(ctx, spec)
			if err != nil {
				t.Errorf("Start: %v", err)
				return
			}
			mu.Lock()
			want[info.ID] = spec.Token
			mu.Unlock()
		}()
	}
	wg.Wait()
	stopped := f.d.Tasks()[0].Arn
	if err := f.rt.Stop(ctx, stopped, "not listed"); err != nil {
		t.Fatal(err)
	}
	listBefore, descBefore := len(f.d.Requests("ListTasks")), len(f.d.Requests("DescribeTasks"))
	all, err := f.rt.List(ctx)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(all) != n-1 {
		t.Fatalf("List returned %d workspaces, want %d", len(all), n-1)
	}
	for _, info := range all {
		if info.ID == stopped {
			t.Errorf("List includes the stopped task")
		}
		if want[info.ID] != info.Token || info.Token == "" {
			t.Errorf("List entry %s has token %q, want %q", info.ID, info.Token, want[info.ID])
		}
		if info.Pool == (info.Conversation != "") {
			t.Errorf("List entry %+v is neither clearly pool nor conversation", info)
		}
	}
	// The SDK may retry a request (same body): count distinct bodies.
	pages := distinct(f.d.Requests("ListTasks")[listBefore:])
	if len(pages) != 3 {
		t.Errorf("ListTasks pages = %d, want 3 for %d tasks", len(pages), n-1)
	}
	batches := distinct(f.d.Requests("DescribeTasks")[descBefore:])
	described := map[string]bool{}
	for _, b := range batches {
		var req struct {
			Tasks   []string `json:"tasks"`
			Include []string `json:"include"`
		}
		if err := json.Unmarshal(b, &req); err != nil {
			t.Fatal(err)
		}
		if len(req.Tasks) > 100 || fmt.Sprint(req.Include) != "[TAGS]" {
			t.Errorf("DescribeTasks batch of %d tasks, include %v", len(req.Tasks), req.Include)
		}
		for _, a := range req.Tasks {
			described[a] = true
		}
	}
	if len(batches) != 3 || len(described) != n-1 {
		t.Errorf("DescribeTasks: %d batches covering %d tasks, want 3 covering %d", len(batches), len(described), n-1)
	}
}

func distinct(bodies []json.RawMessage) []json.RawMessage {
	seen := map[string]bool{}
	var out []json.RawMessage
	for _, b := range bodies {
		if !seen[string(b)] {
			seen[string(b)] = true
			out = append(out, b)
		}
	}
	return out
}

func TestStop(t *testing.T) {
	t.Parallel()
	f := newFixture(t, ecsdouble.Options{})
	ctx := testCtx(t)
	spec := workspace.StartSpec{Token: token(t), Conversation: "conv-s", Tenant: "acme"}
	info, err := f.rt.Start(ctx, spec)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if _, err := f.d.WaitStatus(ctx, info.ID, "RUNNING"); err != nil {
		t.Fatal(err)
	}
	if err := f.rt.Stop(ctx, info.ID, "idle_ttl"); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if got, err := f.rt.Inspect(ctx, info.ID); err != nil || !got.Status.Stopping() {
		t.Errorf("Inspect right after Stop = %+v, %v; want a stopping status", got, err)
	}
	snap, err := f.d.WaitStatus(ctx, info.ID, "STOPPED")
	if err != nil {
		t.Fatal(err)
	}
	if snap.StopCode != "UserInitiated" || snap.StoppedReason != "idle_ttl" || len(snap.Tags) != 0 {
		t.Errorf("stopped task: code %q reason %q tags %v", snap.StopCode, snap.StoppedReason, snap.Tags)
	}
	got, err := f.rt.Inspect(ctx, info.ID)
	if err != nil {
		t.Fatalf("Inspect stopped: %v", err)
	}
	// Tags are gone; the group still names the conversation.
	if got.Status != workspace.StatusStopped || got.Conversation != "conv-s" || got.Pool || got.Endpoint != "" || got.StoppedReason != "idle_ttl" {
		t.Errorf("Inspect stopped = %+v", got)
	}
	if err := f.rt.Stop(ctx, info.ID, "again"); err != nil {
		t.Errorf("Stop of a stopped task: %v", err)
	}
	if err := f.rt.Stop(ctx, "arn:aws:ecs:us-east-1:000000000000:task/"+f.d.ClusterName+"/ffffffffffffffffffffffffffffffff", "x"); err != nil {
		t.Errorf("Stop of an unknown task: %v", err)
	}
}

func TestEssentialContainerExit(t *testing.T) {
	t.Parallel()
	f := newFixture(t, ecsdouble.Options{})
	ctx := testCtx(t)
	info, err := f.rt.Start(ctx, workspace.StartSpec{Token: token(t), Pool: true})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if _, err := f.d.WaitStatus(ctx, info.ID, "RUNNING"); err != nil {
		t.Fatal(err)
	}
	if err := f.d.ExitContainer(info.ID, ecs.DefaultAgentContainer, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := f.d.WaitStatus(ctx, info.ID, "STOPPED"); err != nil {
		t.Fatal(err)
	}
	got, err := f.rt.Inspect(ctx, info.ID)
	if err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	if got.Status != workspace.StatusStopped || got.ExitCode == nil || *got.ExitCode != 3 || !got.Pool || got.StoppedReason == "" {
		t.Errorf("Inspect after the agent exited = %+v", got)
	}
}

func TestPing(t *testing.T) {
	t.Parallel()
	f := newFixture(t, ecsdouble.Options{})
	if err := f.rt.Ping(testCtx(t)); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	wrong, _ := newRuntime(t, f.d, func(o *ecs.Options) { o.Cluster = "no-such-cluster" })
	if err := wrong.Ping(testCtx(t)); err == nil {
		t.Error("Ping of an unknown cluster succeeded")
	}
	if err := f.rt.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestOptionsValidation(t *testing.T) {
	t.Parallel()
	d := ecsdouble.Start(t, ecsdouble.Options{})
	valid := ecs.Options{Cluster: "c", TaskDefinition: "td", Subnets: []string{"subnet-1"}, SecurityGroups: []string{"sg-1"}, ProxyAdminKey: []byte("k")}
	tests := []struct {
		name string
		mod  func(*ecs.Options)
	}{
		{"no cluster", func(o *ecs.Options) { o.Cluster = "" }},
		{"no task definition", func(o *ecs.Options) { o.TaskDefinition = "" }},
		{"no subnets", func(o *ecs.Options) { o.Subnets = nil }},
		{"no security group", func(o *ecs.Options) { o.SecurityGroups = nil }},
		{"launch type and capacity providers", func(o *ecs.Options) {
			o.LaunchType = "EC2"
			o.CapacityProviders = []ecs.CapacityProvider{{Name: "cp"}}
		}},
		{"no admin key", func(o *ecs.Options) { o.ProxyAdminKey = nil }},
		{"startedBy with a colon", func(o *ecs.Options) { o.StartedBy = "workspaced:prod" }},
	}
	for _, tc := range tests {
		opts := valid
		tc.mod(&opts)
		if _, err := ecs.New(d.AWSConfig(), opts); err == nil {
			t.Errorf("%s: New succeeded", tc.name)
		}
	}
	if _, err := ecs.New(d.AWSConfig(), valid); err != nil {
		t.Errorf("valid options: %v", err)
	}
}
