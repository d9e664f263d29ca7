package ecsdouble

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

var (
	subnetRE = regexp.MustCompile(`^subnet-[0-9a-z]+$`)
	sgRE     = regexp.MustCompile(`^sg-[0-9a-z]+$`)
)

func (d *Double) checkTaskDefinition(ref string) error {
	switch ref {
	case d.Family, d.Family + ":1", d.TaskDefinitionArn:
		return nil
	}
	return clientErr("TaskDefinition not found.")
}

func (d *Double) validateRunTask(in runTaskInput) error {
	if err := d.checkCluster(in.Cluster); err != nil {
		return err
	}
	if err := d.checkTaskDefinition(in.TaskDefinition); err != nil {
		return err
	}
	if err := validateClientToken(in.ClientToken); err != nil {
		return err
	}
	if in.Count != nil && *in.Count != 1 {
		if *in.Count < 1 || *in.Count > 10 {
			return invalidParam("count must be between 1 and 10.")
		}
		return invalidParam("the ECS test double runs count 1 only.")
	}
	if in.LaunchType != "" && len(in.CapacityProviderStrategy) > 0 {
		return invalidParam("Specifying both a launch type and capacity provider strategy is not supported. Remove one and try again.")
	}
	if in.LaunchType != "" && in.LaunchType != "EC2" {
		return invalidParam("Task definition does not support launch_type %s.", in.LaunchType)
	}
	for _, cp := range in.CapacityProviderStrategy {
		if cp.CapacityProvider == "" {
			return invalidParam("capacityProvider is required in capacityProviderStrategy.")
		}
	}
	if err := validatePlacement(in.PlacementStrategy); err != nil {
		return err
	}
	if err := validateNetwork(in); err != nil {
		return err
	}
	if err := validateStartedBy(in.StartedBy); err != nil {
		return err
	}
	if len(in.Group) > 255 {
		return invalidParam("group must be at most 255 characters.")
	}
	switch in.PropagateTags {
	case "", "TASK_DEFINITION", "NONE":
	default:
		return invalidParam("propagateTags %q is not valid for RunTask.", in.PropagateTags)
	}
	if err := validateTags(in.Tags); err != nil {
		return err
	}
	return d.validateOverrides(in.Overrides)
}

func validateNetwork(in runTaskInput) error {
	if in.NetworkConfiguration == nil || in.NetworkConfiguration.AwsvpcConfiguration == nil {
		return invalidParam("Network Configuration must be provided when networkMode 'awsvpc' is specified.")
	}
	vpc := in.NetworkConfiguration.AwsvpcConfiguration
	if len(vpc.Subnets) == 0 || len(vpc.Subnets) > 16 {
		return invalidParam("subnets can not be empty and can have at most 16 items.")
	}
	for _, s := range vpc.Subnets {
		if !subnetRE.MatchString(s) {
			return invalidParam("Error retrieving subnet information for [%s]: The subnet ID '%s' does not exist", s, s)
		}
	}
	if len(vpc.SecurityGroups) > 5 {
		return invalidParam("securityGroups can have at most 5 items.")
	}
	for _, g := range vpc.SecurityGroups {
		if !sgRE.MatchString(g) {
			return invalidParam("Error retrieving security group information for [%s]: The security group '%s' does not exist", g, g)
		}
	}
	switch vpc.AssignPublicIP {
	case "", "DISABLED":
	case "ENABLED":
		return invalidParam("Assign public IP is not supported for this launch type.")
	default:
		return invalidParam("assignPublicIp %q is not valid.", vpc.AssignPublicIP)
	}
	return nil
}

func (d *Double) validateOverrides(o *taskOverride) error {
	if o == nil {
		return nil
	}
	b, err := json.Marshal(o)
	if err != nil {
		return err
	}
	if len(b) > 8192 {
		return invalidParam("Container Overrides length must be at most 8192")
	}
	for _, co := range o.ContainerOverrides {
		found := false
		for _, def := range d.defs {
			found = found || def.Name == co.Name
		}
		if !found {
			return invalidParam("Override for container named %s is not a container in the TaskDefinition.", co.Name)
		}
	}
	return nil
}

func (d *Double) runTask(in runTaskInput, raw []byte) (any, error) {
	if err := d.validateRunTask(in); err != nil {
		return nil, err
	}
	token := in.ClientToken
	in.ClientToken = ""
	params, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if token != "" {
		if t, ok := d.tokens[token]; ok {
			if !bytes.Equal(t.params, params) {
				return nil, &apiError{http.StatusBadRequest, "ConflictException", "The specified client token has already been used with different parameters."}
			}
			return runTaskOutput{Tasks: []taskJSON{d.wireLocked(t, false, false)}, Failures: []failure{}}, nil
		}
	}
	if out, ok := d.failedTokens[token]; ok && token != "" {
		return out, nil
	}
	if reason := d.capacityFailureLocked(); reason != "" {
		out := runTaskOutput{Tasks: []taskJSON{}, Failures: []failure{{
			Arn:    d.ContainerInstanceArn,
			Reason: reason,
		}}}
		if d.opts.ReplayFailures && token != "" {
			d.failedTokens[token] = out
		}
		return out, nil
	}
	t := d.newTaskLocked(in, token, params, raw)
	d.changeLocked(t, func() {})
	d.wg.Add(1)
	go d.drive(t)
	return runTaskOutput{Tasks: []taskJSON{d.wireLocked(t, false, false)}, Failures: []failure{}}, nil
}

// capacityFailureLocked returns the failure reason for the next RunTask,
// or "" when the task can be placed.
func (d *Double) capacityFailureLocked() string {
	if len(d.failNext) > 0 {
		r := d.failNext[0]
		d.failNext = d.failNext[1:]
		return r
	}
	if d.agentDown {
		return "AGENT"
	}
	live := 0
	for _, t := range d.order {
		if t.lastStatus != "STOPPED" {
			live++
		}
	}
	if d.capacity > 0 && live >= d.capacity {
		return d.opts.CapacityReason
	}
	if d.opts.ENIs > 0 && live >= d.opts.ENIs {
		return "RESOURCE:ENI"
	}
	return ""
}

func (d *Double) newTaskLocked(in runTaskInput, token string, params, raw []byte) *task {
	id := randomHex(16)
	t := &task{
		arn:           fmt.Sprintf("arn:aws:ecs:%s:%s:task/%s/%s", d.Region, d.Account, d.ClusterName, id),
		id:            id,
		clientToken:   token,
		params:        params,
		request:       append(json.RawMessage(nil), raw...),
		group:         in.Group,
		startedBy:     in.StartedBy,
		launchType:    in.LaunchType,
		subnet:        in.NetworkConfiguration.AwsvpcConfiguration.Subnets[0],
		eniID:         "eni-" + randomHex(8),
		attachmentID:  newUUID(),
		mac:           "02:" + strings.Join(splitPairs(randomHex(5)), ":"),
		lastStatus:    "PROVISIONING",
		desiredStatus: "RUNNING",
		createdAt:     time.Now(),
		env:           map[string]map[string]string{},
		stopReq:       make(chan struct{}),
		done:          make(chan struct{}),
	}
	if t.group == "" {
		t.group = "family:" + d.Family
	}
	if len(in.CapacityProviderStrategy) > 0 {
		t.capacityProv = in.CapacityProviderStrategy[0].CapacityProvider
		t.launchType = "EC2"
	}
	if t.launchType == "" {
		t.launchType = "EC2"
	}
	if in.Overrides != nil {
		t.overrides = *in.Overrides
	}
	t.tags = append(t.tags, in.Tags...)
	if in.EnableECSManagedTags {
		t.tags = append(t.tags, tag{Key: "aws:ecs:clusterName", Value: d.ClusterName})
	}
	for _, def := range d.defs {
		t.containers = append(t.containers, &containerState{
			def:        def,
			arn:        fmt.Sprintf("arn:aws:ecs:%s:%s:container/%s/%s/%s", d.Region, d.Account, d.ClusterName, id, newUUID()),
			lastStatus: "PENDING",
		})
		t.env[def.Name] = d.effectiveEnv(def, t.overrides)
	}
	d.tasks[t.arn] = t
	d.order = append(d.order, t)
	if token != "" {
		d.tokens[token] = t
	}
	return t
}

// effectiveEnv is a container's environment: definition, then secrets,
// then overrides (which replace entries of the same name).
func (d *Double) effectiveEnv(def ContainerDefinition, o taskOverride) map[string]string {
	env := map[string]string{}
	for _, kv := range def.Environment {
		env[kv.Name] = kv.Value
	}
	for _, s := range def.Secrets {
		v, ok := d.opts.Secrets[s.ValueFrom]
		if !ok {
			v = placeholderSecret(s.Name)
		}
		env[s.Name] = v
	}
	for _, co := range o.ContainerOverrides {
		if co.Name != def.Name {
			continue
		}
		for _, kv := range co.Environment {
			env[kv.Name] = kv.Value
		}
	}
	return env
}

// placeholderSecret is the value of a secret the test did not provide:
// shaped to pass the usual syntax checks (a host name under example.com
// works as a key, a secret and a domain allowlist entry alike).
func placeholderSecret(name string) string {
	return strings.ToLower(strings.ReplaceAll(name, "_", "-")) + ".ecsdouble.example.com"
}

func splitPairs(s string) []string {
	var out []string
	for i := 0; i+2 <= len(s); i += 2 {
		out = append(out, s[i:i+2])
	}
	return out
}

func (d *Double) stopTask(in stopTaskInput) (any, error) {
	if err := d.checkCluster(in.Cluster); err != nil {
		return nil, err
	}
	if len(in.Reason) > 1024 {
		return nil, invalidParam("reason must be at most 1024 characters.")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	t := d.lookupLocked(in.Task)
	if t == nil {
		return nil, invalidParam("The referenced task was not found.")
	}
	reason := in.Reason
	if reason == "" {
		reason = "Task stopped by user"
	}
	d.requestStopLocked(t, reason, "UserInitiated")
	return stopTaskOutput{Task: d.wireLocked(t, false, false)}, nil
}

func (d *Double) describeTasks(in describeTasksInput) (any, error) {
	if err := d.checkCluster(in.Cluster); err != nil {
		return nil, err
	}
	if len(in.Tasks) == 0 {
		return nil, invalidParam("Tasks cannot be empty.")
	}
	if len(in.Tasks) > 100 {
		return nil, invalidParam("Tasks can have at most 100 items.")
	}
	withTags := false
	for _, inc := range in.Include {
		if inc != "TAGS" {
			return nil, invalidParam("include %q is not valid.", inc)
		}
		withTags = true
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	out := describeTasksOutput{Tasks: []taskJSON{}, Failures: []failure{}}
	for _, ref := range in.Tasks {
		t := d.lookupLocked(ref)
		if t == nil {
			arn := ref
			if !strings.HasPrefix(ref, "arn:") {
				arn = fmt.Sprintf("arn:aws:ecs:%s:%s:task/%s/%s", d.Region, d.Account, d.ClusterName, ref)
			}
			out.Failures = append(out.Failures, failure{Arn: arn, Reason: "MISSING"})
			continue
		}
		out.Tasks = append(out.Tasks, d.wireLocked(t, false, withTags))
	}
	return out, nil
}

func (d *Double) listTasks(in listTasksInput) (any, error) {
	if err := d.checkCluster(in.Cluster); err != nil {
		return nil, err
	}
	if in.StartedBy != "" && (in.Family != "" || in.ContainerInstance != "" || in.ServiceName != "" || in.LaunchType != "" || in.DesiredStatus != "") {
		return nil, invalidParam("startedBy may not be combined with other filters.")
	}
	if in.ServiceName != "" || in.ContainerInstance != "" {
		return nil, invalidParam("the ECS test double has no services or container instances.")
	}
	desired := in.DesiredStatus
	switch desired {
	case "":
		desired = "RUNNING"
	case "RUNNING", "PENDING", "STOPPED":
	default:
		return nil, invalidParam("desiredStatus %q is not valid.", desired)
	}
	limit := 100
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > 100 {
			return nil, invalidParam("maxResults must be between 1 and 100.")
		}
		limit = int(*in.MaxResults)
	}
	start := 0
	if in.NextToken != "" {
		b, err := base64.RawURLEncoding.DecodeString(in.NextToken)
		n, err2 := strconv.Atoi(string(b))
		if err != nil || err2 != nil || n < 0 {
			return nil, invalidParam("Invalid nextToken.")
		}
		start = n
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var match []string
	for _, t := range d.order {
		if t.desiredStatus != desired {
			continue
		}
		if in.StartedBy != "" && t.startedBy != in.StartedBy {
			continue
		}
		if in.Family != "" && in.Family != d.Family {
			continue
		}
		if in.LaunchType != "" && in.LaunchType != t.launchType {
			continue
		}
		match = append(match, t.arn)
	}
	out := listTasksOutput{TaskArns: []string{}}
	if start < len(match) {
		end := min(len(match), start+limit)
		out.TaskArns = append(out.TaskArns, match[start:end]...)
		if end < len(match) {
			out.NextToken = base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(end)))
		}
	}
	return out, nil
}

func (d *Double) tagResource(in tagResourceInput) (any, error) {
	if len(in.Tags) == 0 {
		return nil, invalidParam("tags can not be empty.")
	}
	if err := validateTags(in.Tags); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	t := d.lookupLocked(in.ResourceArn)
	if t == nil {
		return nil, &apiError{http.StatusBadRequest, "InvalidParameterException", "The specified task is not found."}
	}
	if t.lastStatus == "STOPPED" {
		return nil, invalidParam("The specified task is stopped.")
	}
	merged := mergeTags(t.tags, in.Tags)
	if n := countUserTags(merged); n > maxTagsPerResource {
		return nil, invalidParam("The task would have %d tags; a resource can have at most %d.", n, maxTagsPerResource)
	}
	t.tags = merged
	return struct{}{}, nil
}

// validatePlacement checks placementStrategy as ECS documents it: at most
// five entries; binpack on cpu or memory, spread on a field (instanceId,
// host, or an attribute), random without a field. The double places
// nothing itself: it accepts what ECS would.
func validatePlacement(ps []placementStrategy) error {
	if len(ps) > 5 {
		return invalidParam("placementStrategy may have at most 5 entries.")
	}
	for _, p := range ps {
		switch p.Type {
		case "binpack":
			if p.Field != "cpu" && p.Field != "memory" {
				return invalidParam("binpack placement strategy field must be cpu or memory, not %q.", p.Field)
			}
		case "spread":
			if p.Field == "" {
				return invalidParam("spread placement strategy needs a field.")
			}
		case "random":
			if p.Field != "" {
				return invalidParam("random placement strategy takes no field.")
			}
		default:
			return invalidParam("placementStrategy type %q is not valid (random, spread, binpack).", p.Type)
		}
	}
	return nil
}
