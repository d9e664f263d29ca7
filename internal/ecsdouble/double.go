package ecsdouble

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/docker/docker/client"

	"github.com/workspaced/workspaced/internal/iampolicy"
)

// Local images the double maps the task definition's images to.
const (
	AgentTestImage = "workspaced/workspace:test"
	ProxyTestImage = "workspaced/credential-proxy:dev"
)

// Test credentials the double accepts by default (with "test"/"test", the
// emulator helpers' credentials). Requests are SigV4-verified.
const (
	AccessKeyID     = "AKIDECSDOUBLE"
	SecretAccessKey = "ecsdouble-secret"
)

// Options configure a Double. The zero value is a simulated cluster with a
// random name, unlimited capacity, no throttling and no event sink.
type Options struct {
	// Cluster is the cluster name; default "ecsdouble-<random>".
	Cluster string
	// Region and Account appear in ARNs and events; defaults "us-east-1"
	// and "000000000000" (kumo's account).
	Region  string
	Account string
	// Family is the task definition family; default "workspace-agent".
	Family string
	// Containers are the task definition's containers. Default: the
	// repository's Terraform template rendered with its example values and
	// TemplateVars (images default to AgentTestImage / ProxyTestImage).
	Containers   []ContainerDefinition
	TemplateVars map[string]string

	// Docker, when set, runs every task's containers for real.
	Docker *client.Client
	// Network is the Docker network of the namespace-holding container;
	// default "bridge".
	Network string
	// SecurityGroups maps a security group ID to the Docker network that
	// stands in for it (Docker mode): a task's namespace joins the
	// networks of the groups its RunTask names, and no other, so it
	// reaches what its groups reach (an internal network for a group with
	// no route out; stand-ins of what a group may reach attached to the
	// same network). Set, a task naming a group that is not in it fails
	// to start (TaskFailedToStart). Empty: every task on Network.
	SecurityGroups map[string]string
	// DaemonSecurityOptions are Docker security options added to every
	// container (Docker mode), standing in for the container instance's
	// daemon defaults: the AMI makes the workspace seccomp profile the
	// daemon's default ("seccomp=<json>" here), which a task definition
	// cannot name.
	DaemonSecurityOptions []string
	// ExtraHosts are "name:ip" lines added to every task's /etc/hosts
	// (Docker mode), e.g. to reach a stand-in on the host at the bridge
	// gateway under a real AWS host name. Test wiring: ECS has no such
	// setting for awsvpc tasks.
	ExtraHosts []string
	// Binds maps a container name to Docker bind mounts
	// ("host-path:container-path[:ro]") for that container (Docker mode),
	// e.g. a CA certificate a sidecar must trust (SSL_CERT_FILE). Test
	// wiring, standing in for a host volume.
	Binds map[string][]string
	// HealthCheckInterval replaces the definitions' health check interval
	// (ECS's minimum is 5 s; tests want faster); default 500ms.
	HealthCheckInterval time.Duration
	// Secrets maps a secret's valueFrom to its value; a missing one gets a
	// placeholder "<name in lower case, - for _>.ecsdouble.example.com",
	// e.g. "proxy-domain-whitelist.ecsdouble.example.com".
	Secrets map[string]string

	// Capacity bounds the tasks not yet STOPPED; 0 is unlimited. RunTask
	// beyond it returns a failure with CapacityReason (default
	// "RESOURCE:MEMORY").
	Capacity       int
	CapacityReason string
	// ENIs bounds the awsvpc tasks not yet STOPPED by the elastic network
	// interfaces the (one) container instance can attach; 0 is unlimited.
	// RunTask beyond it returns a RESOURCE:ENI failure, as ECS does when no
	// instance has an ENI slot left although memory and CPU remain.
	ENIs int
	// ReplayFailures makes a clientToken whose RunTask returned failures[]
	// return the same failures again (ECS documents replaying the result of
	// a successful request for a reused token; whether a failures[] answer
	// counts is not documented). Off: a failed RunTask leaves its token
	// unused.
	ReplayFailures bool
	// RateLimit (requests per second, all operations together) and Burst
	// make the double answer ThrottlingException when exceeded; 0 disables.
	RateLimit float64
	Burst     int

	// ProvisioningDelay keeps each new task in PROVISIONING that long.
	ProvisioningDelay time.Duration
	// ProvisioningGate, when set, is called before a task leaves
	// PROVISIONING; the task waits for it to return. An error fails the
	// task (STOPPED, TaskFailedToStart). Use it to hold tasks in tests.
	ProvisioningGate func(ctx context.Context, taskArn string) error

	// Sink receives every event; nil records them only (see Events).
	Sink EventSink
	// DescribeAttachmentType is the ENI attachment type DescribeTasks
	// reports; default "ElasticNetworkInterface" (events always say "eni").
	DescribeAttachmentType string

	// Credentials maps access key IDs to secrets the double accepts; default
	// AccessKeyID/SecretAccessKey and test/test.
	Credentials map[string]string

	// IAM, when set, makes the double authorize every call as IAM does:
	// the caller is the identity of the request's access key (its
	// policies as the Terraform code writes them, internal/awsrules), and
	// a call its policies do not allow fails with AccessDeniedException.
	// A key not listed is denied everything. Nil: no authorization (tests
	// of anything else).
	IAM map[string]iampolicy.Identity
	// ExecutionRoleArn and TaskRoleArn are the task definition's roles,
	// which RunTask passes (iam:PassRole) to ECS; default an execution
	// role "arn:aws:iam::<account>:role/<family>-execution" and no task
	// role (workspaces have none).
	ExecutionRoleArn string
	TaskRoleArn      string

	// Logf logs the double's activity; default testing.T.Logf under Start.
	Logf func(format string, args ...any)
}

// Double is a running ECS control-plane test double. Its methods are safe
// for concurrent use.
type Double struct {
	// URL is the endpoint to give the ECS client (BaseEndpoint).
	URL               string
	ClusterName       string
	ClusterArn        string
	Region            string
	Account           string
	Family            string
	TaskDefinitionArn string

	// ContainerInstanceArn is the one EC2 container instance the double
	// pretends to place every task on (tasks' containerInstanceArn, the
	// arn of capacity failures).
	ContainerInstanceArn string

	opts        Options
	credentials map[string]string
	defs        []ContainerDefinition
	runner      runner
	srv         *httptest.Server

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu           sync.Mutex
	tasks        map[string]*task // by ARN
	order        []*task
	tokens       map[string]*task // by clientToken
	failedTokens map[string]runTaskOutput
	changed      chan struct{}
	events       []Event
	queue        eventQueue
	queueWake    chan struct{}
	deliverMu    sync.Mutex // serialises deliveries
	delivered    int
	deliverErrs  []error
	capacity     int
	failNext     []string
	throttleN    int
	agentDown    bool
	bucket       tokenBucket
	calls        map[string]int
	requests     map[string][]json.RawMessage
	throttled    map[string]int
	denied       []string
	nextIP       int
}

// Start starts a double for the test and stops it (tasks, containers,
// server) at cleanup. It fails the test if the options are unusable.
func Start(t testing.TB, opts Options) *Double {
	t.Helper()
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	d, err := New(opts)
	if err != nil {
		t.Fatalf("start ecs double: %v", err)
	}
	t.Cleanup(d.Close)
	return d
}

// New starts a double; Close stops it.
func New(opts Options) (*Double, error) {
	if opts.Cluster == "" {
		opts.Cluster = "ecsdouble-" + randomHex(4)
	}
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.Account == "" {
		opts.Account = "000000000000"
	}
	if opts.Family == "" {
		opts.Family = "workspace-agent"
	}
	if opts.CapacityReason == "" {
		opts.CapacityReason = "RESOURCE:MEMORY"
	}
	if opts.DescribeAttachmentType == "" {
		opts.DescribeAttachmentType = "ElasticNetworkInterface"
	}
	if opts.Network == "" {
		opts.Network = "bridge"
	}
	if opts.HealthCheckInterval == 0 {
		opts.HealthCheckInterval = 500 * time.Millisecond
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	if opts.ExecutionRoleArn == "" {
		opts.ExecutionRoleArn = fmt.Sprintf("arn:aws:iam::%s:role/%s-execution", opts.Account, opts.Family)
	}
	if opts.Credentials == nil {
		opts.Credentials = map[string]string{AccessKeyID: SecretAccessKey, "test": "test"}
	}
	defs := opts.Containers
	if defs == nil {
		vars := map[string]string{"agent_image": AgentTestImage, "proxy_image": ProxyTestImage}
		for k, v := range opts.TemplateVars {
			vars[k] = v
		}
		var err error
		if defs, err = LoadContainerDefinitions(vars); err != nil {
			return nil, err
		}
	}
	if _, err := startOrder(defs); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &Double{
		ClusterName:       opts.Cluster,
		ClusterArn:        fmt.Sprintf("arn:aws:ecs:%s:%s:cluster/%s", opts.Region, opts.Account, opts.Cluster),
		Region:            opts.Region,
		Account:           opts.Account,
		Family:            opts.Family,
		TaskDefinitionArn: fmt.Sprintf("arn:aws:ecs:%s:%s:task-definition/%s:1", opts.Region, opts.Account, opts.Family),
		opts:              opts,
		credentials:       opts.Credentials,
		defs:              defs,
		ctx:               ctx,
		cancel:            cancel,
		tasks:             map[string]*task{},
		tokens:            map[string]*task{},
		failedTokens:      map[string]runTaskOutput{},
		changed:           make(chan struct{}),
		queueWake:         make(chan struct{}, 1),
		capacity:          opts.Capacity,
		bucket:            newTokenBucket(opts.RateLimit, opts.Burst),
		calls:             map[string]int{},
		requests:          map[string][]json.RawMessage{},
		throttled:         map[string]int{},
	}
	d.ContainerInstanceArn = fmt.Sprintf("arn:aws:ecs:%s:%s:container-instance/%s/%s", opts.Region, opts.Account, opts.Cluster, randomHex(16))
	if opts.Docker != nil {
		rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
		reapStale(rctx, opts.Docker, opts.Logf)
		rcancel()
		d.runner = &dockerRunner{d: d, cli: opts.Docker}
	} else {
		d.runner = &simRunner{d: d}
	}
	d.srv = httptest.NewServer(d)
	d.URL = d.srv.URL
	d.wg.Add(1)
	go d.deliverLoop()
	return d, nil
}

// Close stops the server (waiting for requests in flight), then every task
// (removing its containers) and the event delivery. Events still queued are
// delivered first; held (paused) ones are dropped.
func (d *Double) Close() {
	d.srv.Close()
	d.mu.Lock()
	live := append([]*task(nil), d.order...)
	d.mu.Unlock()
	for _, t := range live {
		d.requestStop(t, "ecs double closed", "UserInitiated")
	}
	for _, t := range live {
		<-t.done
	}
	d.cancel()
	d.wg.Wait()
	if r, ok := d.runner.(*dockerRunner); ok {
		r.sweep()
	}
}

// AWSConfig returns an aws.Config with the double's region and static test
// credentials. Point the ECS client at URL with BaseEndpoint.
func (d *Double) AWSConfig() aws.Config {
	return aws.Config{
		Region:      d.Region,
		Credentials: credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, ""),
	}
}

// SetCapacity changes the bound on tasks not yet STOPPED (0: unlimited).
func (d *Double) SetCapacity(n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.capacity = n
}

// FailNext makes the next len(reasons) RunTask calls return one failure
// each with the given reason (e.g. "RESOURCE:CPU", "ATTRIBUTE"), starting
// no task.
func (d *Double) FailNext(reasons ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.failNext = append(d.failNext, reasons...)
}

// ThrottleNext makes the next n requests (any operation) fail with
// ThrottlingException.
func (d *Double) ThrottleNext(n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.throttleN += n
}

// Calls reports how many requests of an operation ("RunTask", ...) the
// double received, throttled ones included.
func (d *Double) Calls(op string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.calls[op]
}

// Requests returns the bodies of every request of an operation, in
// arrival order (SDK retries included: the Go SDK retries a few percent of
// loopback requests after a client-side connection race, so assert on
// distinct bodies, not on counts).
func (d *Double) Requests(op string) []json.RawMessage {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]json.RawMessage(nil), d.requests[op]...)
}

// Throttled reports how many requests of an operation were throttled.
func (d *Double) Throttled(op string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.throttled[op]
}

// SetEventHook installs a function applied to every event before delivery:
// return nil to drop it, two copies to duplicate it, or other events. nil
// removes the hook. Events() still records what ECS emitted.
func (d *Double) SetEventHook(hook func(Event) []Event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.queue.hook = hook
}

// PauseEvents holds every later event instead of delivering it.
func (d *Double) PauseEvents() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.queue.paused = true
}

// ResumeEvents delivers the held events, in the order reorder returns (nil
// keeps emission order), and resumes normal delivery.
func (d *Double) ResumeEvents(reorder func([]Event) []Event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	held := d.queue.held
	d.queue.held = nil
	d.queue.paused = false
	if reorder != nil {
		held = reorder(held)
	}
	d.queue.pending = append(d.queue.pending, held...)
	d.wakeDelivery()
}

// Events returns every event the double emitted so far, in order.
func (d *Double) Events() []Event {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Event(nil), d.events...)
}

// DeliveryErrors returns the errors the sink returned so far.
func (d *Double) DeliveryErrors() []error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]error(nil), d.deliverErrs...)
}

// WaitDelivered waits until the sink has been handed n events (after hooks)
// or ctx ends.
func (d *Double) WaitDelivered(ctx context.Context, n int) error {
	return d.wait(ctx, func() bool { return d.delivered >= n })
}

// Delivered reports how many events were handed to the sink.
func (d *Double) Delivered() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.delivered
}

// emitLocked records ev and queues it for delivery. d.mu must be held.
func (d *Double) emitLocked(ev Event) {
	d.events = append(d.events, ev)
	out := []Event{ev}
	if d.queue.hook != nil {
		out = d.queue.hook(ev)
	}
	if d.queue.paused {
		d.queue.held = append(d.queue.held, out...)
	} else {
		d.queue.pending = append(d.queue.pending, out...)
	}
	d.wakeDelivery()
	d.notifyLocked()
}

func (d *Double) wakeDelivery() {
	select {
	case d.queueWake <- struct{}{}:
	default:
	}
}

// deliverLoop hands queued events to the sink one at a time.
func (d *Double) deliverLoop() {
	defer d.wg.Done()
	for {
		d.mu.Lock()
		if len(d.queue.pending) == 0 {
			d.mu.Unlock()
			select {
			case <-d.queueWake:
				continue
			case <-d.ctx.Done():
				return
			}
		}
		ev := d.queue.pending[0]
		d.queue.pending = d.queue.pending[1:]
		d.mu.Unlock()

		var err error
		if d.opts.Sink != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err = d.opts.Sink.Deliver(ctx, ev)
			cancel()
		}
		d.mu.Lock()
		d.delivered++
		if err != nil {
			d.deliverErrs = append(d.deliverErrs, err)
			d.opts.Logf("ecsdouble: deliver event %s v%d: %v", ev.TaskArn, ev.Version, err)
		}
		d.notifyLocked()
		d.mu.Unlock()
	}
}

// notifyLocked wakes every waiter. d.mu must be held.
func (d *Double) notifyLocked() {
	close(d.changed)
	d.changed = make(chan struct{})
}

// wait blocks until cond (called with d.mu held) is true or ctx ends.
func (d *Double) wait(ctx context.Context, cond func() bool) error {
	for {
		d.mu.Lock()
		if cond() {
			d.mu.Unlock()
			return nil
		}
		ch := d.changed
		d.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// WaitStatus waits until the task reaches lastStatus status (or a later
// one; STOPPED satisfies every wait) and returns its snapshot.
func (d *Double) WaitStatus(ctx context.Context, taskArn, status string) (TaskSnapshot, error) {
	want, ok := statusRank[status]
	if !ok {
		return TaskSnapshot{}, fmt.Errorf("unknown status %q", status)
	}
	var snap TaskSnapshot
	err := d.wait(ctx, func() bool {
		t := d.lookupLocked(taskArn)
		if t == nil {
			return false
		}
		snap = t.snapshotLocked()
		return statusRank[t.lastStatus] >= want
	})
	if err != nil {
		return snap, fmt.Errorf("wait for %s to reach %s (last %s): %w", taskArn, status, snap.LastStatus, err)
	}
	return snap, nil
}

// Task returns a snapshot of one task (by ARN or ID).
func (d *Double) Task(taskArn string) (TaskSnapshot, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := d.lookupLocked(taskArn)
	if t == nil {
		return TaskSnapshot{}, false
	}
	return t.snapshotLocked(), true
}

// Tasks returns snapshots of every task ever started, oldest first.
func (d *Double) Tasks() []TaskSnapshot {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]TaskSnapshot, 0, len(d.order))
	for _, t := range d.order {
		out = append(out, t.snapshotLocked())
	}
	return out
}

// ExitContainer makes one essential container of a running task exit with
// code, as if its process ended on its own: the task stops with
// EssentialContainerExited. With Docker the container is killed, and the
// exit code Docker reports (137) is what the task shows.
func (d *Double) ExitContainer(taskArn, container string, code int) error {
	d.mu.Lock()
	t := d.lookupLocked(taskArn)
	d.mu.Unlock()
	if t == nil {
		return errors.New("no such task")
	}
	return d.runner.exit(t, container, code)
}

// TaskSnapshot is what the double knows about a task, for assertions.
type TaskSnapshot struct {
	Arn           string
	ID            string
	LastStatus    string
	DesiredStatus string
	Version       int64
	IP            string
	Group         string
	StartedBy     string
	ClientToken   string
	StopCode      string
	StoppedReason string
	// Tags are the task's current tags (empty after StopTask).
	Tags map[string]string
	// Request is the RunTask request body that created the task.
	Request json.RawMessage
	// Env is each container's effective environment (definition,
	// overrides, resolved secrets).
	Env map[string]map[string]string
	// ContainerIDs maps container names to Docker container IDs (Docker
	// mode only).
	ContainerIDs map[string]string
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// tokenBucket is a plain token bucket on the wall clock: throttling is
// about real request rates.
type tokenBucket struct {
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func newTokenBucket(rate float64, burst int) tokenBucket {
	if burst < 1 {
		burst = 1
	}
	return tokenBucket{rate: rate, burst: float64(burst), tokens: float64(burst)}
}

// take reports whether a request may proceed now.
func (b *tokenBucket) take(now time.Time) bool {
	if b.rate <= 0 {
		return true
	}
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
