package ecsdouble

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Task lifecycle statuses, in order.
var statusRank = map[string]int{
	"PROVISIONING":   1,
	"PENDING":        2,
	"ACTIVATING":     3,
	"RUNNING":        4,
	"DEACTIVATING":   5,
	"STOPPING":       6,
	"DEPROVISIONING": 7,
	"STOPPED":        8,
}

// task is one ECS task. Fields are guarded by Double.mu except where noted.
type task struct {
	arn, id      string
	clientToken  string
	params       []byte // canonical RunTask parameters (without clientToken)
	request      json.RawMessage
	group        string
	startedBy    string
	launchType   string
	capacityProv string
	overrides    taskOverride
	tags         []tag
	subnet       string
	eniID        string
	attachmentID string
	mac          string

	lastStatus    string
	desiredStatus string
	version       int64
	ip            string
	attachStatus  string
	stopCode      string
	stoppedReason string
	createdAt     time.Time
	startedAt     time.Time
	stoppingAt    time.Time
	stoppedAt     time.Time
	pullStarted   time.Time
	pullStopped   time.Time
	containers    []*containerState
	env           map[string]map[string]string

	// stopReq is closed by the first stop request; done when the driver
	// has finished (task STOPPED and cleaned up). Not guarded.
	stopReq chan struct{}
	done    chan struct{}
	// runner-private state, owned by the driver goroutine.
	rs any
}

type containerState struct {
	def        ContainerDefinition
	arn        string
	runtimeID  string
	lastStatus string
	exitCode   *int
	reason     string
	health     string
}

func (d *Double) lookupLocked(ref string) *task {
	if t, ok := d.tasks[ref]; ok {
		return t
	}
	for _, t := range d.order {
		if t.id == ref {
			return t
		}
	}
	return nil
}

// changeLocked applies fn to t, bumps its version and emits an event.
func (d *Double) changeLocked(t *task, fn func()) {
	fn()
	t.version++
	d.emitLocked(d.eventLocked(t))
}

// change is changeLocked taking the lock.
func (d *Double) change(t *task, fn func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.changeLocked(t, fn)
}

// requestStop marks the task for stopping (desiredStatus STOPPED, tags
// deleted) and wakes its driver. Later requests change nothing.
func (d *Double) requestStop(t *task, reason, code string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.requestStopLocked(t, reason, code)
}

func (d *Double) requestStopLocked(t *task, reason, code string) {
	if t.desiredStatus == "STOPPED" {
		return
	}
	d.changeLocked(t, func() {
		t.desiredStatus = "STOPPED"
		t.stopCode = code
		t.stoppedReason = reason
		t.stoppingAt = time.Now()
		t.tags = nil // StopTask deletes the task's tags
	})
	close(t.stopReq)
}

// drive runs the task through its lifecycle. One goroutine per task.
func (d *Double) drive(t *task) {
	defer d.wg.Done()
	defer close(t.done)
	ctx, cancel := context.WithCancel(d.ctx)
	defer cancel()
	go func() {
		select {
		case <-t.stopReq:
			cancel()
		case <-ctx.Done():
		}
	}()

	exited, err := d.start(ctx, t)
	if err != nil {
		d.mu.Lock()
		stopping := t.desiredStatus == "STOPPED"
		if !stopping {
			d.opts.Logf("ecsdouble: task %s failed to start: %v", t.id, err)
			d.requestStopLocked(t, "Task failed to start: "+err.Error(), "TaskFailedToStart")
		}
		d.mu.Unlock()
	} else {
		select {
		case <-t.stopReq:
		case ex := <-exited:
			d.mu.Lock()
			for _, c := range t.containers {
				if c.def.Name == ex.container {
					c.exitCode = &ex.code
				}
			}
			d.requestStopLocked(t, "Essential container in task exited", "EssentialContainerExited")
			d.mu.Unlock()
		}
	}
	d.stop(t)
}

// start takes the task from PROVISIONING to RUNNING. It returns a channel
// that yields when an essential container exits on its own.
func (d *Double) start(ctx context.Context, t *task) (<-chan exitInfo, error) {
	if d.opts.ProvisioningDelay > 0 {
		timer := time.NewTimer(d.opts.ProvisioningDelay)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		}
	}
	if d.opts.ProvisioningGate != nil {
		if err := d.opts.ProvisioningGate(ctx, t.arn); err != nil {
			return nil, fmt.Errorf("provisioning gate: %w", err)
		}
	}
	pullStarted := time.Now()
	ip, err := d.runner.attach(ctx, t)
	if err != nil {
		return nil, err
	}
	d.change(t, func() {
		t.ip = ip
		t.attachStatus = "ATTACHED"
		t.lastStatus = "PENDING"
		t.pullStarted = pullStarted
		t.pullStopped = time.Now()
	})
	exited, err := d.runner.run(ctx, t)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if t.desiredStatus == "STOPPED" {
		return exited, nil
	}
	d.changeLocked(t, func() {
		t.lastStatus = "RUNNING"
		t.startedAt = time.Now()
		for _, c := range t.containers {
			c.lastStatus = "RUNNING"
		}
	})
	return exited, nil
}

// stop takes the task down to STOPPED: STOPPING (containers stopped),
// DEPROVISIONING (ENI detached), STOPPED (resources released).
func (d *Double) stop(t *task) {
	d.change(t, func() { t.lastStatus = "STOPPING" })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	codes := d.runner.stopContainers(ctx, t)
	d.change(t, func() {
		t.lastStatus = "DEPROVISIONING"
		t.attachStatus = "DELETED"
		if t.ip != "" {
			t.attachStatus = "DETACHING"
		}
		for _, c := range t.containers {
			if code, ok := codes[c.def.Name]; ok && c.exitCode == nil {
				c.exitCode = &code
			}
			c.lastStatus = "STOPPED"
		}
	})
	d.runner.release(ctx, t)
	d.change(t, func() {
		t.lastStatus = "STOPPED"
		t.attachStatus = "DELETED"
		t.stoppedAt = time.Now()
		for _, c := range t.containers {
			c.lastStatus = "STOPPED"
		}
	})
}

// exitInfo says which essential container exited, and how.
type exitInfo struct {
	container string
	code      int
}

// wireLocked renders the task as DescribeTasks (iso=false) or an event
// detail (iso=true) shows it.
func (d *Double) wireLocked(t *task, iso bool, withTags bool) taskJSON {
	ts := func(v time.Time) *stamp {
		if v.IsZero() {
			return nil
		}
		return &stamp{t: v, iso: iso}
	}
	attType := d.opts.DescribeAttachmentType
	if iso {
		attType = "eni"
	}
	details := []keyValue{{Name: "subnetId", Value: t.subnet}}
	if t.ip != "" {
		details = append(details,
			keyValue{Name: "networkInterfaceId", Value: t.eniID},
			keyValue{Name: "macAddress", Value: t.mac},
			keyValue{Name: "privateDnsName", Value: "ip-" + strings.ReplaceAll(t.ip, ".", "-") + ".ec2.internal"},
			keyValue{Name: "privateIPv4Address", Value: t.ip})
	}
	status := t.attachStatus
	if status == "" {
		status = "PRECREATED"
	}
	w := taskJSON{
		Attachments:          []attachmentJSON{{ID: t.attachmentID, Type: attType, Status: status, Details: details}},
		AvailabilityZone:     d.Region + "a",
		CapacityProviderName: t.capacityProv,
		ClusterArn:           d.ClusterArn,
		ContainerInstanceArn: d.ContainerInstanceArn,
		Connectivity:         "CONNECTED",
		ConnectivityAt:       ts(t.createdAt),
		Cpu:                  fmt.Sprint(sumCPU(t.containers)),
		CreatedAt:            ts(t.createdAt),
		DesiredStatus:        t.desiredStatus,
		ExecutionStoppedAt:   ts(t.stoppedAt),
		Group:                t.group,
		HealthStatus:         "UNKNOWN",
		LastStatus:           t.lastStatus,
		LaunchType:           t.launchType,
		Memory:               fmt.Sprint(sumMemory(t.containers)),
		Overrides:            t.overrides,
		PullStartedAt:        ts(t.pullStarted),
		PullStoppedAt:        ts(t.pullStopped),
		StartedAt:            ts(t.startedAt),
		StartedBy:            t.startedBy,
		StopCode:             t.stopCode,
		StoppedAt:            ts(t.stoppedAt),
		StoppedReason:        t.stoppedReason,
		StoppingAt:           ts(t.stoppingAt),
		TaskArn:              t.arn,
		TaskDefinitionArn:    d.TaskDefinitionArn,
		Version:              t.version,
	}
	if w.Overrides.ContainerOverrides == nil {
		w.Overrides.ContainerOverrides = []containerOverride{}
	}
	if withTags {
		w.Tags = append([]tag{}, t.tags...)
	}
	if iso {
		w.UpdatedAt = &stamp{t: time.Now(), iso: true}
	}
	for _, c := range t.containers {
		cj := containerJSON{
			ContainerArn:      c.arn,
			TaskArn:           t.arn,
			Name:              c.def.Name,
			Image:             c.def.Image,
			RuntimeID:         c.runtimeID,
			LastStatus:        c.lastStatus,
			ExitCode:          c.exitCode,
			Reason:            c.reason,
			HealthStatus:      c.health,
			NetworkInterfaces: []networkInterfaceJSON{},
			Cpu:               fmt.Sprint(c.def.Cpu),
		}
		if c.def.Memory > 0 {
			cj.Memory = fmt.Sprint(c.def.Memory)
		}
		if c.def.MemoryReservation > 0 {
			cj.MemoryReservation = fmt.Sprint(c.def.MemoryReservation)
		}
		if t.ip != "" {
			cj.NetworkInterfaces = append(cj.NetworkInterfaces, networkInterfaceJSON{AttachmentID: t.attachmentID, PrivateIpv4Address: t.ip})
		}
		w.Containers = append(w.Containers, cj)
	}
	return w
}

func sumCPU(cs []*containerState) int64 {
	var n int64
	for _, c := range cs {
		n += c.def.Cpu
	}
	return n
}

func sumMemory(cs []*containerState) int64 {
	var n int64
	for _, c := range cs {
		n += c.def.Memory
	}
	return n
}

// eventLocked builds the state change event for t's current state.
func (d *Double) eventLocked(t *task) Event {
	now := time.Now()
	detail, err := json.Marshal(eventDetail(d.wireLocked(t, true, false)))
	if err != nil {
		panic(err)
	}
	return Event{
		ID:            newUUID(),
		Time:          now,
		Region:        d.Region,
		Account:       d.Account,
		Resources:     []string{t.arn},
		Detail:        detail,
		TaskArn:       t.arn,
		Version:       t.version,
		LastStatus:    t.lastStatus,
		DesiredStatus: t.desiredStatus,
	}
}

func (t *task) snapshotLocked() TaskSnapshot {
	s := TaskSnapshot{
		Arn:           t.arn,
		ID:            t.id,
		LastStatus:    t.lastStatus,
		DesiredStatus: t.desiredStatus,
		Version:       t.version,
		IP:            t.ip,
		Group:         t.group,
		StartedBy:     t.startedBy,
		ClientToken:   t.clientToken,
		StopCode:      t.stopCode,
		StoppedReason: t.stoppedReason,
		Tags:          map[string]string{},
		Request:       t.request,
		Env:           map[string]map[string]string{},
		ContainerIDs:  map[string]string{},
	}
	for _, tg := range t.tags {
		s.Tags[tg.Key] = tg.Value
	}
	for name, env := range t.env {
		m := map[string]string{}
		for k, v := range env {
			m[k] = v
		}
		s.Env[name] = m
	}
	for _, c := range t.containers {
		if c.runtimeID != "" {
			s.ContainerIDs[c.def.Name] = c.runtimeID
		}
	}
	return s
}

func newUUID() string {
	h := randomHex(16)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
