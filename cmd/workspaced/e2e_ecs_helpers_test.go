package main

import (
	"context"
	"encoding/json"
	"encoding/pem"

	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	dockerclient "github.com/docker/docker/client"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/workspaced/workspaced/config"
	"github.com/workspaced/workspaced/events"
	"github.com/workspaced/workspaced/events/bus"
	"github.com/workspaced/workspaced/events/bus/bustest"
	"github.com/workspaced/workspaced/internal/awsrules"
	"github.com/workspaced/workspaced/internal/awstest"
	"github.com/workspaced/workspaced/internal/ecsdouble"
	"github.com/workspaced/workspaced/internal/fakebedrock"
	"github.com/workspaced/workspaced/internal/iampolicy"
	"github.com/workspaced/workspaced/internal/redistest"
	"github.com/workspaced/workspaced/internal/testenv"
	"github.com/workspaced/workspaced/sse"
	"github.com/workspaced/workspaced/store"
	"github.com/workspaced/workspaced/store/storetest"
	"github.com/workspaced/workspaced/workers"
)

// The ECS/SQS end-to-end stack: workspaced in-process with
// CONTAINER_MANAGER_TYPE=ecs and BUS=sqs; its SQS queues (with DLQs and
// redrive) and EventBridge on the shared in-process kumo; the ECS double
// running every task for real on Docker (credential-proxy sidecar + agent
// with the stand-in claude, from the Terraform task definition) and
// publishing its task events with PutEvents; the Terraform rule routing
// them to the task-events queue; a real redis-server.

// bedrockHost is the Bedrock runtime's real host name: the sidecar resolves
// it (its /etc/hosts) to the fake on the Docker bridge gateway, whose
// certificate covers it.
const bedrockHost = "bedrock-runtime.us-east-1.amazonaws.com"

// Credentials of the sidecar (task definition secrets) that the fake
// Bedrock verifies signatures against. Nothing else knows them.
var bedrockCreds = aws.Credentials{AccessKeyID: "AKIDE2EECSBEDROCK01", SecretAccessKey: "e2e-ecs-bedrock-secret-key"}

// caPath is where the sidecar finds the fake's certificate (SSL_CERT_FILE).
const caPath = "/etc/workspaced-e2e/bedrock-ca.pem"

type ecsOptions struct {
	// docker runs tasks for real; without it the double is a state
	// machine (no agent: tasks never become ready).
	docker bool
	// bedrock starts a fake Bedrock the tasks' sidecars sign requests to.
	bedrock bool
	// noEvents keeps the double's events off EventBridge (recorded only).
	noEvents bool
	// double adjusts the double's options.
	double func(*ecsdouble.Options)
	// env overrides workspaced's environment.
	env map[string]string
	// filesBucket creates a bucket in the emulator and saves workspace
	// files there (WORKSPACE_FILES_BUCKET, S3 through the IAM gate).
	filesBucket bool
}

// agentTestImage is the tasks' agent image (WORKSPACE_TEST_IMAGE overrides
// ecsdouble.AgentTestImage, e.g. a worktree's own build).
func agentTestImage() string {
	if img := os.Getenv("WORKSPACE_TEST_IMAGE"); img != "" {
		return img
	}
	return ecsdouble.AgentTestImage
}

// The backend's test access key: the ECS double and the IAM gate
// authorize it as the backend task role.
const (
	backendKeyID  = "AKIDE2EBACKEND"
	backendSecret = "e2e-backend-secret"
)

// backendIdentity is the backend task role as terraform/modules/security
// writes its policy, bound to this stack's cluster, queues and bucket.
func (s *ecsStack) backendIdentity(t *testing.T, prefix string, dopts ecsdouble.Options, env map[string]string) iampolicy.Identity {
	t.Helper()
	const region, account = "us-east-1", "000000000000"
	q := bus.Queues{Prefix: prefix}
	arn := func(name string) string { return "arn:aws:sqs:" + region + ":" + account + ":" + name }
	family := dopts.Family
	if family == "" {
		family = "workspace-agent"
	}
	renv := awsrules.Env{
		Region: region, Account: account, Family: family,
		Cluster:          "arn:aws:ecs:" + region + ":" + account + ":cluster/" + dopts.Cluster,
		ExecutionRoleArn: dopts.ExecutionRoleArn,
		CommandQueues:    []string{arn(q.Name(events.TopicWorkspaceRequested)), arn(q.Name(events.TopicWorkspaceReleased))},
		TaskEventsQueue:  arn(q.Name(events.TopicTaskEvents)),
	}
	if renv.ExecutionRoleArn == "" {
		renv.ExecutionRoleArn = "arn:aws:iam::" + account + ":role/" + family + "-execution" // the double's default
	}
	for _, topic := range []string{events.TopicWorkspaceRequested, events.TopicWorkspaceReleased, events.TopicTaskEvents} {
		renv.DeadLetterQueues = append(renv.DeadLetterQueues, arn(q.DeadLetter(topic)))
	}
	if b := env["WORKSPACE_FILES_BUCKET"]; b != "" {
		renv.FilesBucket = "arn:aws:s3:::" + b
	}
	p, err := awsrules.Backend(renv)
	if err != nil {
		t.Fatalf("render the backend policy from terraform/: %v", err)
	}
	return iampolicy.Identity{ARN: "arn:aws:sts::" + account + ":assumed-role/wsd-test-backend-task/e2e", Policies: []iampolicy.Named{p}}
}

type ecsStack struct {
	*stack  // the first replica
	gate    *awsrules.Gate
	t0      *testing.T
	cfg     config.Config
	rs      *redistest.Server
	docker  *dockerclient.Client
	emu     *bustest.Emulator
	prefix  string
	double  *ecsdouble.Double
	bedrock *fakebedrock.Server
	// queued counts the events the double queued for delivery (after
	// hooks: dropped ones excluded, duplicates included).
	queued atomic.Int64
}

// startECSStack runs workspaced (all roles) against the ECS double and
// SQS. Everything is the test's own: queues (unique prefix), cluster (so
// the EventBridge rule, which filters on the cluster ARN, sees only this
// test's events), Redis, containers (labelled with the cluster).
func startECSStack(t *testing.T, o ecsOptions) *ecsStack {
	t.Helper()
	var cli *dockerclient.Client
	if o.docker {
		cli = testenv.Docker(t)
		testenv.Image(t, cli, agentTestImage())
		testenv.Image(t, cli, ecsdouble.ProxyTestImage)
	}
	rs := redistest.Start(t)
	emu := bustest.StartEmulator(t)
	awstest.EventBridgeDelivery(t, emu.URL)
	prefix := bustest.UniquePrefix(t)
	bustest.CreateQueues(t, emu.SQS, prefix)
	eb := eventbridge.NewFromConfig(emu.Config, func(eo *eventbridge.Options) { eo.BaseEndpoint = aws.String(emu.URL) })

	s := &ecsStack{t0: t, emu: emu, prefix: prefix, docker: cli}
	dopts := ecsdouble.Options{}
	if !o.noEvents {
		dopts.Sink = ecsdouble.EventBridgeSink{Client: eb}
	}
	if o.docker {
		dopts.Docker = cli
	}
	if o.bedrock {
		if cli == nil {
			t.Fatal("bedrock needs docker")
		}
		s.bedrock = bedrockForTasks(t, cli, &dopts)
	}
	if cli != nil {
		// The workspace security group as the double models it (D22): an
		// internal network, no route out. What the tasks reach besides
		// the backend (the Bedrock and MCP stand-ins) listens on the
		// host, which Docker keeps reachable from any network of its own
		// (docs/aws.md, "Security groups in the double").
		dopts.SecurityGroups = map[string]string{workspaceSG: workspaceNetwork(t, cli)}
	}
	if dopts.TemplateVars == nil && dopts.Containers == nil {
		dopts.TemplateVars = map[string]string{"agent_image": agentTestImage()}
	}
	if o.double != nil {
		o.double(&dopts)
	}
	if o.filesBucket {
		env := map[string]string{}
		for k, v := range o.env {
			env[k] = v
		}
		bucket := randomName("e2e-ecs-files-")
		client := s3.NewFromConfig(emu.Config, func(so *s3.Options) { so.BaseEndpoint = aws.String(emu.URL); so.UsePathStyle = true })
		if _, err := client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
			t.Fatal(err)
		}
		env["WORKSPACE_FILES_BUCKET"], env["AWS_ENDPOINT_URL_S3"] = bucket, emu.URL
		o.env = env
	}
	if dopts.Cluster == "" {
		dopts.Cluster = randomName("e2e-ecs-")
	}
	// AWS's rules, on: every ECS, SQS and S3 call of the backend is
	// authorized against the backend role's policy as terraform/ writes
	// it (the double for ECS, a gate in front of the emulator for SQS and
	// S3); the harness itself acts as an administrator.
	backend := s.backendIdentity(t, prefix, dopts, o.env)
	admin := iampolicy.Identity{ARN: "arn:aws:iam::000000000000:role/e2e-admin", Policies: []iampolicy.Named{{Name: "admin", Policy: iampolicy.AllowAll}}}
	if dopts.Credentials == nil {
		dopts.Credentials = map[string]string{ecsdouble.AccessKeyID: ecsdouble.SecretAccessKey, "test": "test"}
	}
	dopts.Credentials[backendKeyID] = backendSecret
	dopts.IAM = map[string]iampolicy.Identity{backendKeyID: backend, "test": admin, ecsdouble.AccessKeyID: admin}
	s.gate = awsrules.StartGate(t, emu.URL, "us-east-1", "000000000000", map[string]iampolicy.Identity{backendKeyID: backend, "test": admin})
	if cli != nil {
		// Registered before the double starts, so it runs after the
		// double closed: whatever a failed test left behind goes too.
		t.Cleanup(func() { removeCluster(t, cli, dopts.Cluster) })
	}
	d := ecsdouble.Start(t, dopts)
	s.double = d
	s.setEventHook(nil)
	taskQueue, err := emu.SQS.GetQueueUrl(context.Background(), &sqs.GetQueueUrlInput{
		QueueName: aws.String(bus.Queues{Prefix: prefix}.Name(events.TopicTaskEvents))})
	if err != nil {
		t.Fatal(err)
	}
	awstest.TaskEventRule(t, eb, emu.SQS, d.ClusterArn, "workspaced", aws.ToString(taskQueue.QueueUrl))

	env := map[string]string{
		"CONTAINER_MANAGER_TYPE":       "ecs",
		"BUS":                          "sqs",
		"HTTP_ADDR":                    "127.0.0.1:0",
		"API_KEYS":                     "e2e:" + testKey,
		"REDIS_URL":                    rs.URL,
		"WORKSPACED_DEPLOYMENT":        randomName("e2e-"),
		"ECS_CLUSTER_NAME":             d.ClusterName,
		"WORKSPACE_TASK_DEFINITION":    d.Family,
		"ECS_WORKSPACE_SUBNETS":        "subnet-0e2e0a,subnet-0e2e0b",
		"ECS_WORKSPACE_SECURITY_GROUP": workspaceSG,
		"ECS_STARTED_BY":               "workspaced",
		"PROXY_ADMIN_KEY":              "e2e-ecs-proxy-admin-key-0123456789",
		"AWS_REGION":                   d.Region,
		"AWS_ENDPOINT_URL_ECS":         d.URL,
		"AWS_ENDPOINT_URL_SQS":         s.gate.URL,
		"SQS_QUEUE_PREFIX":             prefix,
		"PROVISION_TIMEOUT":            "90s",
		"SSE_HEARTBEAT_INTERVAL":       "1s",
		"SHUTDOWN_TIMEOUT":             "10s",
		"LOG_LEVEL":                    "debug",
		"LOG_FORMAT":                   "text",
	}
	for k, v := range o.env {
		if k == "AWS_ENDPOINT_URL_S3" && v == emu.URL {
			v = s.gate.URL // S3 through IAM too
		}
		env[k] = v
	}
	cfg, err := config.LoadFrom(env)
	if err != nil {
		t.Fatal(err)
	}
	s.cfg, s.rs = cfg, rs
	storetest.Audit(t, rs, cfg.Redis.KeyPrefix) // checked after every replica stopped
	s.stack = s.startReplica()
	return s
}

// startReplica runs one more workspaced process (all roles) on the stack's
// queues, cluster and Redis: replicas compete for the same SQS messages.
// It stops at cleanup, before the double and the queues go.
func (s *ecsStack) startReplica() *stack {
	t := s.t0
	t.Helper()
	tw := &testWriter{t: t}
	t.Cleanup(tw.close) // registered early: runs after the replica stopped
	log := slog.New(slog.NewTextHandler(tw, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// The backend role's static test credentials (the double and the IAM
	// gate know them); never the process environment, which parallel
	// tests share.
	awsCfg := s.emu.Config.Copy()
	awsCfg.Credentials = credentials.NewStaticCredentialsProvider(backendKeyID, backendSecret, "")
	ctx, cancel := context.WithCancel(context.Background())
	app, err := newApp(ctx, s.cfg, Roles{API: true, Worker: true, Events: true}, log, appDeps{awsConfig: &awsCfg})
	if err != nil {
		cancel()
		t.Fatalf("NewApp: %v", err)
	}
	r := &stack{t: t, app: app, url: "http://" + app.Addr().String(), docker: s.docker,
		store:  store.New(s.rs.Client(t), store.Options{Prefix: s.cfg.Redis.KeyPrefix}),
		cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- app.Run(ctx) }()
	t.Cleanup(r.stop)
	return r
}

// bedrockForTasks starts a fake Bedrock on the Docker bridge gateway and
// points every task's sidecar at it: the real host name mapped to the
// gateway in the task's /etc/hosts (and allowed to resolve to a private
// address), the fake's certificate as the sidecar's only CA, and the
// test credentials as the task definition's secrets.
func bedrockForTasks(t *testing.T, cli *dockerclient.Client, o *ecsdouble.Options) *fakebedrock.Server {
	t.Helper()
	gw := bridgeGateway(t, cli)
	fb := fakebedrock.New(t, bedrockCreds, "us-east-1", fakebedrock.Options{Listen: net.JoinHostPort(gw, "0"), Names: []string{bedrockHost}})
	_, port, err := net.SplitHostPort(fb.Addr)
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(t.TempDir(), "bedrock-ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: fb.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	vars, err := ecsdouble.ExampleVars()
	if err != nil {
		t.Fatal(err)
	}
	defs, err := ecsdouble.LoadContainerDefinitions(map[string]string{
		"agent_image": agentTestImage(), "proxy_image": ecsdouble.ProxyTestImage})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for i := range defs {
		if defs[i].Name != "credential-proxy" {
			continue
		}
		found = true
		defs[i].Environment = append(defs[i].Environment,
			ecsdouble.KeyValue{Name: "BEDROCK_UPSTREAM_URL", Value: "https://" + net.JoinHostPort(bedrockHost, port)},
			ecsdouble.KeyValue{Name: "PROXY_PRIVATE_HOSTS", Value: bedrockHost},
			ecsdouble.KeyValue{Name: "SSL_CERT_FILE", Value: caPath},
		)
	}
	if !found {
		t.Fatal("task definition has no credential-proxy container")
	}
	o.Containers = defs
	o.Secrets = map[string]string{
		vars["bedrock_access_key_id_arn"]:     bedrockCreds.AccessKeyID,
		vars["bedrock_secret_access_key_arn"]: bedrockCreds.SecretAccessKey,
	}
	o.ExtraHosts = []string{bedrockHost + ":" + gw}
	o.Binds = map[string][]string{"credential-proxy": {ca + ":" + caPath + ":ro"}}
	return fb
}

// workspaceSG is the workspace security group of the ECS stacks.
const workspaceSG = "sg-0e2e0a"

// workspaceNetwork creates the internal Docker network standing in for
// workspaceSG; it is removed at clean-up, after the double's containers
// (registered before the double starts).
func workspaceNetwork(t *testing.T, cli *dockerclient.Client) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := randomName("e2e-sg-")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := cli.NetworkRemove(ctx, name); err != nil && !dockerclient.IsErrNotFound(err) {
			t.Errorf("cleanup: remove network %s: %v", name, err)
		}
	})
	if _, err := cli.NetworkCreate(ctx, name, network.CreateOptions{Driver: "bridge", Internal: true,
		Labels: map[string]string{ecsdouble.LabelCluster: name}}); err != nil {
		t.Fatalf("create network: %v", err)
	}
	return name
}

// bridgeGateway is the host's address on Docker's default bridge, which
// task containers reach.
func bridgeGateway(t *testing.T, cli *dockerclient.Client) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nw, err := cli.NetworkInspect(ctx, "bridge", network.InspectOptions{})
	if err != nil {
		t.Fatalf("inspect the bridge network: %v", err)
	}
	for _, c := range nw.IPAM.Config {
		if ip := net.ParseIP(c.Gateway); ip != nil && ip.To4() != nil {
			return c.Gateway
		}
	}
	name := nw.Options["com.docker.network.bridge.name"]
	if name == "" {
		name = "docker0"
	}
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		t.Fatalf("bridge interface %s: %v", name, err)
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	t.Fatalf("no IPv4 address on %s", name)
	return ""
}

// removeCluster force-removes every container the double made for cluster.
func removeCluster(t *testing.T, cli *dockerclient.Client, cluster string) {
	testenv.RemoveLabelled(t, cli, ecsdouble.LabelCluster, cluster)
}

// clusterContainers lists the containers of this stack's tasks.
func (s *ecsStack) clusterContainers() []container.Summary {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := s.docker.ContainerList(ctx, container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", ecsdouble.LabelCluster+"="+s.double.ClusterName))})
	if err != nil {
		s.t.Fatal(err)
	}
	return cs
}

// tasksOf returns the double's tasks started for conversation cid.
func (s *ecsStack) tasksOf(cid string) []ecsdouble.TaskSnapshot {
	var out []ecsdouble.TaskSnapshot
	for _, snap := range s.double.Tasks() {
		if snap.Group == "conversation:"+cid {
			out = append(out, snap)
		}
	}
	return out
}

// counter sums a counter of workspaced's registry over the series matching
// labels.
func counter(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue metric
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// setEventHook installs h as the double's event hook (nil: deliver each
// event once), counting what it queues.
func (s *ecsStack) setEventHook(h func(ecsdouble.Event) []ecsdouble.Event) {
	if h == nil {
		h = func(ev ecsdouble.Event) []ecsdouble.Event { return []ecsdouble.Event{ev} }
	}
	s.double.SetEventHook(func(ev ecsdouble.Event) []ecsdouble.Event {
		out := h(ev)
		s.queued.Add(int64(len(out)))
		return out
	})
}

// waitEventsHandled waits until every event the double queued so far has
// been delivered (PutEvents; call it only while events are not paused) and
// workspaced's state subscriber has handled as many task-event messages.
// Nothing notifies a handled message that changed nothing (a stale
// event), so this polls workspaced's own bus metric, with a deadline.
func (s *ecsStack) waitEventsHandled(ctx context.Context) {
	s.t.Helper()
	if err := s.double.WaitDelivered(ctx, int(s.queued.Load())); err != nil {
		s.t.Fatalf("double did not deliver its events: %v", err)
	}
	if errs := s.double.DeliveryErrors(); len(errs) > 0 {
		s.t.Fatalf("event delivery failed: %v", errs)
	}
	want := float64(s.double.Delivered())
	labels := map[string]string{"topic": events.TopicTaskEvents}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		got := counter(s.t, s.app.reg, "workspaced_bus_messages_handled_total", labels)
		if got >= want {
			if p := counter(s.t, s.app.reg, "workspaced_bus_messages_poisoned_total", labels); p > 0 {
				s.t.Fatalf("%v task events poisoned", p)
			}
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			s.t.Fatalf("task events handled: %v of %v delivered", got, want)
		}
	}
}

// receiveDLQ long-polls topic's dead-letter queue until it holds a
// message, and returns its body and string attributes (the message is
// left in the queue).
func (s *ecsStack) receiveDLQ(ctx context.Context, topic string) (string, map[string]string) {
	s.t.Helper()
	url, err := s.emu.SQS.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(bus.Queues{Prefix: s.prefix}.DeadLetter(topic))})
	if err != nil {
		s.t.Fatal(err)
	}
	for {
		out, err := s.emu.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: url.QueueUrl, MaxNumberOfMessages: 1, WaitTimeSeconds: 1, VisibilityTimeout: 0,
			MessageAttributeNames: []string{"All"}})
		if err != nil {
			s.t.Fatalf("receive from the %s DLQ: %v", topic, err)
		}
		if len(out.Messages) > 0 {
			attrs := map[string]string{}
			for k, v := range out.Messages[0].MessageAttributes {
				attrs[k] = aws.ToString(v.StringValue)
			}
			return aws.ToString(out.Messages[0].Body), attrs
		}
	}
}

// resultLine is the final stream-json line of a Claude run.
type resultLine struct {
	Type    string `json:"type"`
	Subtype string `json:"subtype"`
	IsError bool   `json:"is_error"`
	Result  string `json:"result"`
}

// claudeLines decodes the stream-json lines ("message" events) of a run.
func claudeLines(t *testing.T, evs []sse.Event) (types []string, texts []string, result resultLine) {
	t.Helper()
	for _, ev := range evs {
		if ev.Event != "message" {
			continue
		}
		var m struct {
			Type    string `json:"type"`
			Message struct {
				Content []struct {
					Text string `json:"text"`
				} `json:"content"`
			} `json:"message"`
		}
		if err := json.Unmarshal([]byte(ev.Data), &m); err != nil {
			t.Fatalf("stream-json line is not JSON: %s", ev.Data)
		}
		types = append(types, m.Type)
		for _, c := range m.Message.Content {
			texts = append(texts, c.Text)
		}
		if m.Type == "result" {
			if err := json.Unmarshal([]byte(ev.Data), &result); err != nil {
				t.Fatal(err)
			}
		}
	}
	return types, texts, result
}

// errorCode is the code of a final "error" event ("" if it is not one).
func errorCode(ev sse.Event) string {
	if ev.Event != "error" {
		return ""
	}
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal([]byte(ev.Data), &e)
	return e.Error.Code
}

// states records every state a conversation passes through (Redis
// pub/sub), from now until the test ends.
type stateLog struct {
	ch   chan store.ConversationState
	seen []store.ConversationState
}

func (s *ecsStack) followStates(ctx context.Context, cid string) *stateLog {
	s.t.Helper()
	w, err := s.store.Watch(ctx, cid)
	if err != nil {
		s.t.Fatal(err)
	}
	l := &stateLog{ch: make(chan store.ConversationState, 256)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(l.ch)
		for {
			c, err := w.Next(ctx)
			if err != nil {
				return
			}
			l.ch <- c.State
		}
	}()
	s.t.Cleanup(func() { w.Close(); <-done })
	return l
}

// drain returns the states seen so far (without waiting).
func (l *stateLog) drain() []store.ConversationState {
	for {
		select {
		case st, ok := <-l.ch:
			if !ok {
				return l.seen
			}
			if len(l.seen) == 0 || l.seen[len(l.seen)-1] != st {
				l.seen = append(l.seen, st)
			}
		default:
			return l.seen
		}
	}
}

func statesString(ss []store.ConversationState) string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	return strings.Join(out, " → ")
}

// waitAgent waits until the agent at endpoint answers /health through the
// runtime's transport. A process that just started has no readiness event
// to wait on (ECS reports RUNNING when the containers start), so this
// polls, with a deadline.
func (s *ecsStack) waitAgent(ctx context.Context, endpoint string) {
	s.t.Helper()
	rt, err := s.app.runtime.rt.Transport(endpoint)
	if err != nil {
		s.t.Fatal(err)
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := workers.AgentHealth.Healthy(hctx, rt, endpoint)
		cancel()
		if err == nil {
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			s.t.Fatalf("agent at %s never answered /health: %v", endpoint, err)
		}
	}
}
