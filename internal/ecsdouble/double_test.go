package ecsdouble_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"

	"github.com/workspaced/workspaced/events"
	"github.com/workspaced/workspaced/internal/ecsdouble"
)

// signer describes how rawCall signs: with which key, for which region,
// over which body; nil sends no signature.
type signer struct {
	akid, secret, region, body string
}

// rawCall posts body to the double as operation op, signed as sig says,
// and returns status and error code.
func rawCall(t *testing.T, d *ecsdouble.Double, op, contentType, body string, sig *signer) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, d.URL+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("X-Amz-Target", op)
	if sig != nil {
		signed := body
		if sig.body != "" {
			signed = sig.body
		}
		sum := sha256.Sum256([]byte(signed))
		creds := aws.Credentials{AccessKeyID: sig.akid, SecretAccessKey: sig.secret}
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "ecs", sig.region, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e struct {
		Type string `json:"__type"`
	}
	_ = json.Unmarshal(b, &e)
	if resp.StatusCode != http.StatusOK && resp.Header.Get("X-Amzn-Errortype") == "" {
		t.Errorf("error response without X-Amzn-ErrorType: %s", b)
	}
	code := e.Type
	if i := strings.LastIndex(code, "#"); i >= 0 {
		code = code[i+1:]
	}
	return resp.StatusCode, code
}

func TestProtocol(t *testing.T) {
	t.Parallel()
	d := ecsdouble.Start(t, ecsdouble.Options{})
	const json11 = "application/x-amz-json-1.1"
	const prefix = "AmazonEC2ContainerServiceV20141113."
	good := &signer{akid: ecsdouble.AccessKeyID, secret: ecsdouble.SecretAccessKey, region: d.Region}
	list := `{"cluster":"` + d.ClusterName + `"}`
	tests := []struct {
		name, op, ct, body string
		sig                *signer
		status             int
		code               string
	}{
		{"list ok", prefix + "ListTasks", json11, list, good, 200, ""},
		{"emulator credentials", prefix + "ListTasks", json11, list, &signer{akid: "test", secret: "test", region: d.Region}, 200, ""},
		{"cluster by arn", prefix + "ListTasks", json11, `{"cluster":"` + d.ClusterArn + `"}`, good, 200, ""},
		{"unsigned", prefix + "ListTasks", json11, list, nil, 403, "MissingAuthenticationTokenException"},
		{"wrong secret", prefix + "ListTasks", json11, list, &signer{akid: ecsdouble.AccessKeyID, secret: "nope", region: d.Region}, 403, "InvalidSignatureException"},
		{"unknown key", prefix + "ListTasks", json11, list, &signer{akid: "AKIDOTHER", secret: "x", region: d.Region}, 403, "UnrecognizedClientException"},
		{"other region", prefix + "ListTasks", json11, list, &signer{akid: ecsdouble.AccessKeyID, secret: ecsdouble.SecretAccessKey, region: "eu-west-1"}, 403, "InvalidSignatureException"},
		{"tampered body", prefix + "ListTasks", json11, list, &signer{akid: ecsdouble.AccessKeyID, secret: ecsdouble.SecretAccessKey, region: d.Region, body: `{}`}, 403, "InvalidSignatureException"},
		{"json 1.0", prefix + "ListTasks", "application/x-amz-json-1.0", `{}`, good, 400, "SerializationException"},
		{"unknown operation", prefix + "CreateCluster", json11, `{}`, good, 400, "UnknownOperationException"},
		{"other service", "AmazonSQS.SendMessage", json11, `{}`, good, 400, "UnknownOperationException"},
		{"unknown member", prefix + "StopTask", json11, `{"task":"x","force":true}`, good, 400, "SerializationException"},
		{"not json", prefix + "StopTask", json11, `{`, good, 400, "SerializationException"},
		{"default cluster", prefix + "ListTasks", json11, `{}`, good, 400, "ClusterNotFoundException"},
		{"other cluster", prefix + "DescribeTasks", json11, `{"cluster":"nope","tasks":["x"]}`, good, 400, "ClusterNotFoundException"},
	}
	for _, tc := range tests {
		status, code := rawCall(t, d, tc.op, tc.ct, tc.body, tc.sig)
		if status != tc.status || code != tc.code {
			t.Errorf("%s: %d %q, want %d %q", tc.name, status, code, tc.status, tc.code)
		}
	}
}

// apiCode returns the API error code of err ("" if none).
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// TestRunTaskValidation covers what RunTask rejects besides the limits of
// TestRunTaskLimits (clientToken, startedBy, tags).
func TestRunTaskValidation(t *testing.T) {
	t.Parallel()
	d := ecsdouble.Start(t, ecsdouble.Options{})
	c := ecsClient(d)
	big := strings.Repeat("x", 8200)
	tests := []struct {
		name string
		mod  func(*awsecs.RunTaskInput)
		code string
	}{
		{"launch type and capacity provider", func(in *awsecs.RunTaskInput) {
			in.CapacityProviderStrategy = []ecstypes.CapacityProviderStrategyItem{{CapacityProvider: aws.String("cp")}}
		}, "InvalidParameterException"},
		{"no network configuration", func(in *awsecs.RunTaskInput) { in.NetworkConfiguration = nil }, "InvalidParameterException"},
		{"binpack on an unknown field", func(in *awsecs.RunTaskInput) {
			in.PlacementStrategy = []ecstypes.PlacementStrategy{{Type: ecstypes.PlacementStrategyTypeBinpack, Field: aws.String("disk")}}
		}, "InvalidParameterException"},
		{"spread without a field", func(in *awsecs.RunTaskInput) {
			in.PlacementStrategy = []ecstypes.PlacementStrategy{{Type: ecstypes.PlacementStrategyTypeSpread}}
		}, "InvalidParameterException"},
		{"public ip on EC2", func(in *awsecs.RunTaskInput) {
			in.NetworkConfiguration.AwsvpcConfiguration.AssignPublicIp = ecstypes.AssignPublicIpEnabled
		}, "InvalidParameterException"},
		{"overrides over 8192", func(in *awsecs.RunTaskInput) {
			in.Overrides = &ecstypes.TaskOverride{ContainerOverrides: []ecstypes.ContainerOverride{{
				Name: aws.String("credential-proxy"), Environment: []ecstypes.KeyValuePair{{Name: aws.String("X"), Value: aws.String(big)}},
			}}}
		}, "InvalidParameterException"},
		{"override of an unknown container", func(in *awsecs.RunTaskInput) {
			in.Overrides = &ecstypes.TaskOverride{ContainerOverrides: []ecstypes.ContainerOverride{{Name: aws.String("sidecar")}}}
		}, "InvalidParameterException"},
		{"unknown task definition", func(in *awsecs.RunTaskInput) { in.TaskDefinition = aws.String("other:3") }, "ClientException"},
	}
	for _, tc := range tests {
		in := runTask(d, "v-"+strings.ReplaceAll(tc.name, " ", "-"), "workspaced")
		tc.mod(in)
		_, err := c.RunTask(testCtx(t), in)
		if got := apiCode(err); got != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
	if n := len(d.Tasks()); n != 0 {
		t.Errorf("invalid requests started %d tasks", n)
	}
}

func TestClientToken(t *testing.T) {
	t.Parallel()
	d := ecsdouble.Start(t, ecsdouble.Options{})
	c := ecsClient(d)
	ctx := testCtx(t)
	first := startTask(t, d, "tok-1", "workspaced")
	again := startTask(t, d, "tok-1", "workspaced")
	if first != again || len(d.Tasks()) != 1 {
		t.Fatalf("same token, same parameters: %s and %s, %d tasks", first, again, len(d.Tasks()))
	}
	_, err := c.RunTask(ctx, runTask(d, "tok-1", "workspaced-other"))
	var conflict *ecstypes.ConflictException
	if !errors.As(err, &conflict) {
		t.Fatalf("same token, other parameters: %v, want ConflictException", err)
	}
	// Tokens are per cluster.
	other := ecsdouble.Start(t, ecsdouble.Options{})
	if arn := startTask(t, other, "tok-1", "workspaced"); arn == first {
		t.Error("a token used in another cluster returned its task")
	}
}

func TestTaskLifecycle(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	d := ecsdouble.Start(t, ecsdouble.Options{ProvisioningGate: func(ctx context.Context, _ string) error {
		select {
		case <-gate:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}})
	c := ecsClient(d)
	ctx := testCtx(t)
	arn := startTask(t, d, "life", "workspaced")
	describe := func() ecstypes.Task {
		t.Helper()
		out, err := c.DescribeTasks(ctx, &awsecs.DescribeTasksInput{Cluster: aws.String(d.ClusterName), Tasks: []string{arn}, Include: []ecstypes.TaskField{ecstypes.TaskFieldTags}})
		if err != nil || len(out.Tasks) != 1 {
			t.Fatalf("DescribeTasks: %v %+v", err, out)
		}
		return out.Tasks[0]
	}
	held := describe()
	if aws.ToString(held.LastStatus) != "PROVISIONING" || ipOf(held) != "" || aws.ToString(held.Attachments[0].Status) != "PRECREATED" {
		t.Errorf("held task: %s, ip %q, attachment %s", aws.ToString(held.LastStatus), ipOf(held), aws.ToString(held.Attachments[0].Status))
	}
	if len(held.Tags) == 0 {
		t.Error("DescribeTasks with include TAGS returned no tags")
	}
	close(gate)
	if _, err := d.WaitStatus(ctx, arn, "RUNNING"); err != nil {
		t.Fatal(err)
	}
	running := describe()
	if aws.ToString(running.LastStatus) != "RUNNING" || ipOf(running) == "" || running.Version <= held.Version ||
		aws.ToString(running.Attachments[0].Type) != "ElasticNetworkInterface" || running.CreatedAt == nil || running.StartedAt == nil {
		t.Errorf("running task: %s v%d (held v%d), ip %q, attachment %s", aws.ToString(running.LastStatus), running.Version, held.Version, ipOf(running), aws.ToString(running.Attachments[0].Type))
	}
	if _, err := c.StopTask(ctx, &awsecs.StopTaskInput{Cluster: aws.String(d.ClusterName), Task: aws.String(arn), Reason: aws.String("bye")}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.WaitStatus(ctx, arn, "STOPPED"); err != nil {
		t.Fatal(err)
	}
	stopped := describe()
	if len(stopped.Tags) != 0 || aws.ToString(stopped.StoppedReason) != "bye" || stopped.StopCode != ecstypes.TaskStopCodeUserInitiated ||
		aws.ToString(stopped.StartedBy) != "workspaced" || aws.ToString(stopped.Group) != "conversation:c1" {
		t.Errorf("stopped task: tags %v reason %q code %q startedBy %q group %q", stopped.Tags, aws.ToString(stopped.StoppedReason), stopped.StopCode,
			aws.ToString(stopped.StartedBy), aws.ToString(stopped.Group))
	}
	out, err := c.DescribeTasks(ctx, &awsecs.DescribeTasksInput{Cluster: aws.String(d.ClusterName), Tasks: []string{arn, arn + "0"}})
	if err != nil || len(out.Tasks) != 1 || len(out.Failures) != 1 || aws.ToString(out.Failures[0].Reason) != "MISSING" {
		t.Errorf("DescribeTasks with an unknown task: %v %+v", err, out)
	}
	if len(out.Tasks) == 1 && len(out.Tasks[0].Tags) != 0 {
		t.Error("DescribeTasks without include TAGS returned tags")
	}
	many := make([]string, 101)
	for i := range many {
		many[i] = arn
	}
	if _, err := c.DescribeTasks(ctx, &awsecs.DescribeTasksInput{Cluster: aws.String(d.ClusterName), Tasks: many}); apiCode(err) != "InvalidParameterException" {
		t.Errorf("DescribeTasks of 101 tasks: %v", err)
	}
}

func ipOf(task ecstypes.Task) string {
	for _, a := range task.Attachments {
		for _, kv := range a.Details {
			if aws.ToString(kv.Name) == "privateIPv4Address" {
				return aws.ToString(kv.Value)
			}
		}
	}
	return ""
}

func TestListTasks(t *testing.T) {
	t.Parallel()
	d := ecsdouble.Start(t, ecsdouble.Options{})
	c := ecsClient(d)
	ctx := testCtx(t)
	var ours []string
	for _, tok := range []string{"a", "b", "c", "d", "e"} {
		ours = append(ours, startTask(t, d, tok, "workspaced"))
	}
	startTask(t, d, "f", "workspaced-other")
	if _, err := c.StopTask(ctx, &awsecs.StopTaskInput{Cluster: aws.String(d.ClusterName), Task: aws.String(ours[0])}); err != nil {
		t.Fatal(err)
	}
	var got []string
	pages := awsecs.NewListTasksPaginator(c, &awsecs.ListTasksInput{Cluster: aws.String(d.ClusterName), StartedBy: aws.String("workspaced")}, func(o *awsecs.ListTasksPaginatorOptions) { o.Limit = 2 })
	n := 0
	for pages.HasMorePages() {
		p, err := pages.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n++
		got = append(got, p.TaskArns...)
	}
	if !slices.Equal(got, ours[1:]) || n != 2 {
		t.Errorf("ListTasks startedBy=workspaced in pages of 2: %d pages %v, want %v", n, got, ours[1:])
	}
	stopped, err := c.ListTasks(ctx, &awsecs.ListTasksInput{Cluster: aws.String(d.ClusterName), DesiredStatus: ecstypes.DesiredStatusStopped})
	if err != nil || !slices.Equal(stopped.TaskArns, ours[:1]) {
		t.Errorf("ListTasks desiredStatus=STOPPED: %v %v", err, stopped)
	}
	_, err = c.ListTasks(ctx, &awsecs.ListTasksInput{Cluster: aws.String(d.ClusterName), StartedBy: aws.String("workspaced"), DesiredStatus: ecstypes.DesiredStatusStopped})
	if apiCode(err) != "InvalidParameterException" {
		t.Errorf("ListTasks with startedBy and another filter: %v", err)
	}
}

func TestCapacity(t *testing.T) {
	t.Parallel()
	d := ecsdouble.Start(t, ecsdouble.Options{Capacity: 1})
	c := ecsClient(d)
	ctx := testCtx(t)
	first := startTask(t, d, "cap-1", "workspaced")
	out, err := c.RunTask(ctx, runTask(d, "cap-2", "workspaced"))
	if err != nil || len(out.Tasks) != 0 || len(out.Failures) != 1 || aws.ToString(out.Failures[0].Reason) != "RESOURCE:MEMORY" {
		t.Fatalf("RunTask beyond capacity: %v %+v", err, out)
	}
	d.FailNext("ATTRIBUTE")
	d.SetCapacity(0)
	out, err = c.RunTask(ctx, runTask(d, "cap-2", "workspaced"))
	if err != nil || len(out.Failures) != 1 || aws.ToString(out.Failures[0].Reason) != "ATTRIBUTE" {
		t.Fatalf("RunTask with an injected failure: %v %+v", err, out)
	}
	// A failed RunTask does not consume its token.
	if second := startTask(t, d, "cap-2", "workspaced"); second == first {
		t.Fatal("the retried token returned another task")
	}
}

func TestReplayFailures(t *testing.T) {
	t.Parallel()
	d := ecsdouble.Start(t, ecsdouble.Options{ReplayFailures: true})
	c := ecsClient(d)
	ctx := testCtx(t)
	d.FailNext("RESOURCE:CPU")
	for range 2 {
		out, err := c.RunTask(ctx, runTask(d, "replayed", "workspaced"))
		if err != nil || len(out.Failures) != 1 || aws.ToString(out.Failures[0].Reason) != "RESOURCE:CPU" {
			t.Fatalf("RunTask with a failed token: %v %+v", err, out)
		}
	}
	startTask(t, d, "fresh", "workspaced") // a new token places normally
}

func TestThrottling(t *testing.T) {
	t.Parallel()
	// One request, then the bucket refills once in ~17 minutes.
	d := ecsdouble.Start(t, ecsdouble.Options{RateLimit: 0.001, Burst: 1})
	c := ecsClient(d)
	ctx := testCtx(t)
	if _, err := c.ListTasks(ctx, &awsecs.ListTasksInput{Cluster: aws.String(d.ClusterName)}); err != nil {
		t.Fatalf("first request: %v", err)
	}
	_, err := c.ListTasks(ctx, &awsecs.ListTasksInput{Cluster: aws.String(d.ClusterName)})
	if apiCode(err) != "ThrottlingException" || d.Throttled("ListTasks") < 1 {
		t.Errorf("request over the rate: %v (throttled %d)", err, d.Throttled("ListTasks"))
	}
}

func TestEventFaults(t *testing.T) {
	t.Parallel()
	got := make(chan ecsdouble.Event, 100)
	d := ecsdouble.Start(t, ecsdouble.Options{Sink: ecsdouble.SinkFunc(func(_ context.Context, ev ecsdouble.Event) error {
		got <- ev
		return nil
	})})
	ctx := testCtx(t)
	// Duplicate RUNNING, drop PENDING.
	d.SetEventHook(func(ev ecsdouble.Event) []ecsdouble.Event {
		switch ev.LastStatus {
		case "PENDING":
			return nil
		case "RUNNING":
			return []ecsdouble.Event{ev, ev}
		}
		return []ecsdouble.Event{ev}
	})
	arn := startTask(t, d, "faults", "workspaced")
	if _, err := d.WaitStatus(ctx, arn, "RUNNING"); err != nil {
		t.Fatal(err)
	}
	if err := d.WaitDelivered(ctx, 3); err != nil { // PROVISIONING, RUNNING, RUNNING
		t.Fatal(err)
	}
	var statuses []string
	for range 3 {
		statuses = append(statuses, (<-got).LastStatus)
	}
	if strings.Join(statuses, " ") != "PROVISIONING RUNNING RUNNING" {
		t.Errorf("delivered %v, want PENDING dropped and RUNNING twice", statuses)
	}
	if n := len(d.Events()); n != 3 {
		t.Errorf("Events() records %d emitted events, want 3 (what ECS emitted)", n)
	}

	// Hold the stop sequence, then deliver it reversed.
	d.SetEventHook(nil)
	d.PauseEvents()
	if _, err := ecsClient(d).StopTask(ctx, &awsecs.StopTaskInput{Cluster: aws.String(d.ClusterName), Task: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.WaitStatus(ctx, arn, "STOPPED"); err != nil {
		t.Fatal(err)
	}
	d.ResumeEvents(func(held []ecsdouble.Event) []ecsdouble.Event {
		slices.Reverse(held)
		return held
	})
	if err := d.WaitDelivered(ctx, 3+4); err != nil {
		t.Fatal(err)
	}
	var versions []int64
	for range 4 {
		versions = append(versions, (<-got).Version)
	}
	if !slices.IsSortedFunc(versions, func(a, b int64) int { return int(b - a) }) {
		t.Errorf("released versions %v, want descending", versions)
	}
}

func TestEventEnvelope(t *testing.T) {
	t.Parallel()
	d := ecsdouble.Start(t, ecsdouble.Options{})
	ctx := testCtx(t)
	arn := startTask(t, d, "env", "workspaced")
	if _, err := d.WaitStatus(ctx, arn, "RUNNING"); err != nil {
		t.Fatal(err)
	}
	evs := d.Events()
	last := evs[len(evs)-1]
	env := last.Envelope()
	e, err := events.DecodeTaskStateChange(env)
	if err != nil {
		t.Fatalf("envelope does not decode: %v\n%s", err, env)
	}
	if e.Version != "0" || e.Source != "aws.ecs" || e.DetailType != "ECS Task State Change" || e.Account != d.Account ||
		e.Region != d.Region || !slices.Equal(e.Resources, []string{arn}) || e.Detail.LastStatus != "RUNNING" ||
		e.Detail.PrivateIPv4() == "" || e.Detail.Attachments[0].Type != "eni" || e.Detail.UpdatedAt == nil ||
		e.Detail.ClusterArn != d.ClusterArn || e.Detail.Version != last.Version {
		t.Errorf("envelope %s", env)
	}
	// Timestamps in events are ISO strings, not epoch numbers.
	if !bytes.Contains(last.Detail, []byte(`"createdAt":"`)) {
		t.Errorf("detail timestamps are not ISO strings: %s", last.Detail)
	}
	if time.Since(e.Time) > time.Hour {
		t.Errorf("envelope time %v", e.Time)
	}
}

func TestRenderTemplate(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"a": "1", "b_2": "x"}
	ok := []struct{ in, out string }{
		{`{"v": ${a}, "s": "${b_2}"}`, `{"v": 1, "s": "x"}`},
		{`$${a} and %%{ x }`, `${a} and %{ x }`},
		{`no interpolation`, `no interpolation`},
	}
	for _, tc := range ok {
		got, err := ecsdouble.RenderTemplate([]byte(tc.in), vars)
		if err != nil || string(got) != tc.out {
			t.Errorf("RenderTemplate(%q) = %q, %v; want %q", tc.in, got, err, tc.out)
		}
	}
	for _, bad := range []string{`${missing}`, `${var.a}`, `${upper(a)}`, `%{ if a }x%{ endif }`, `${ a }`, `${a`} {
		if _, err := ecsdouble.RenderTemplate([]byte(bad), vars); err == nil {
			t.Errorf("RenderTemplate(%q) succeeded, want an error", bad)
		}
	}
	// The repository's templates render with plain substitution.
	if _, err := ecsdouble.LoadContainerDefinitions(nil); err != nil {
		t.Errorf("containers template: %v", err)
	}
}
