package ecsdouble

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
)

// Labels on every container the double creates. The com.amazonaws.ecs.*
// ones are those the ECS agent puts on task containers.
const (
	LabelCluster   = "workspaced.ecsdouble.cluster"
	LabelTask      = "workspaced.ecsdouble.task"
	labelTaskArn   = "com.amazonaws.ecs.task-arn"
	labelContainer = "com.amazonaws.ecs.container-name"
	labelECSClust  = "com.amazonaws.ecs.cluster"
)

// containerStartTimeout bounds waiting for a dependency (ECS's
// ECS_CONTAINER_START_TIMEOUT defaults to 3 minutes).
const containerStartTimeout = 2 * time.Minute

// staleAfter is the age past which a container of some earlier double
// (a test binary that crashed before its cleanup) is removed.
const staleAfter = time.Hour

// reapStale removes containers left by doubles of crashed test runs.
func reapStale(ctx context.Context, cli *client.Client, logf func(string, ...any)) {
	list, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", LabelCluster))})
	if err != nil {
		logf("ecsdouble: list stale containers: %v", err)
		return
	}
	for _, c := range list {
		if time.Since(time.Unix(c.Created, 0)) < staleAfter {
			continue
		}
		if err := cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !client.IsErrNotFound(err) {
			logf("ecsdouble: remove stale container %s: %v", c.ID, err)
		}
	}
}

// sweep removes every container of this double's cluster that is left
// once its tasks have stopped: one whose create was still in flight when a
// task was stopped (the engine created it, the cancelled client never
// learned its ID) is not among the task's containers.
func (r *dockerRunner) sweep() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	list, err := r.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", LabelCluster+"="+r.d.ClusterName))})
	if err != nil {
		r.d.opts.Logf("ecsdouble: list the cluster's containers: %v", err)
		return
	}
	for _, c := range list {
		if err := r.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !client.IsErrNotFound(err) {
			r.d.opts.Logf("ecsdouble: remove leftover container %s: %v", c.ID, err)
		}
	}
}

// dockerRunner runs each task's containers: the first container in
// dependsOn order holds the task's network namespace on opts.Network, the
// others join it (NetworkMode container:<id>), as awsvpc tasks share one
// ENI.
type dockerRunner struct {
	d   *Double
	cli *client.Client

	mu    sync.Mutex
	exits map[*task]chan exitInfo
}

func (r *dockerRunner) containerName(t *task, name string) string {
	return fmt.Sprintf("ecsdouble-%s-%s-%s", r.d.ClusterName, t.id[:12], name)
}

func (r *dockerRunner) state(t *task, name string) *containerState {
	for _, c := range t.containers {
		if c.def.Name == name {
			return c
		}
	}
	return nil
}

func (r *dockerRunner) attach(ctx context.Context, t *task) (string, error) {
	order, err := startOrder(r.d.defs)
	if err != nil {
		return "", err
	}
	holder := order[0]
	networks, err := r.taskNetworks(t)
	if err != nil {
		return "", err
	}
	primary := networks[0]
	id, err := r.create(ctx, t, holder, primary)
	if err != nil {
		return "", err
	}
	// awsvpc: one ENI carrying every group of the task; here one
	// namespace on every group's network.
	for _, nw := range networks[1:] {
		if err := r.cli.NetworkConnect(ctx, nw, id, nil); err != nil {
			return "", fmt.Errorf("connect %s to network %s: %w", holder.Name, nw, err)
		}
	}
	if err := r.cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return "", fmt.Errorf("CannotStartContainerError: %s: %w", holder.Name, err)
	}
	r.setStatus(t, holder.Name, "RUNNING")
	info, err := r.cli.ContainerInspect(ctx, id)
	if err != nil {
		return "", err
	}
	if info.State != nil && !info.State.Running {
		return "", fmt.Errorf("essential container %s exited (%d): %s", holder.Name, info.State.ExitCode, r.logTail(id))
	}
	if info.NetworkSettings == nil || info.NetworkSettings.Networks[primary] == nil ||
		info.NetworkSettings.Networks[primary].IPAddress == "" {
		return "", fmt.Errorf("container %s has no address on network %s", holder.Name, primary)
	}
	return info.NetworkSettings.Networks[primary].IPAddress, nil
}

// taskNetworks returns the Docker networks standing in for the task's
// security groups (Options.SecurityGroups), in the order RunTask named the
// groups; without that map, Options.Network. The task's address is its
// address on the first.
func (r *dockerRunner) taskNetworks(t *task) ([]string, error) {
	groups := r.d.opts.SecurityGroups
	if len(groups) == 0 {
		return []string{r.d.opts.Network}, nil
	}
	var req struct {
		NetworkConfiguration struct {
			AwsvpcConfiguration struct {
				SecurityGroups []string `json:"securityGroups"`
			} `json:"awsvpcConfiguration"`
		} `json:"networkConfiguration"`
	}
	if err := json.Unmarshal(t.request, &req); err != nil {
		return nil, fmt.Errorf("read the task's security groups: %w", err)
	}
	var out []string
	for _, g := range req.NetworkConfiguration.AwsvpcConfiguration.SecurityGroups {
		nw, ok := groups[g]
		if !ok {
			return nil, fmt.Errorf("security group %s has no network in this double (Options.SecurityGroups)", g)
		}
		if !slices.Contains(out, nw) {
			out = append(out, nw)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("the task names no security group; this double has no default group")
	}
	return out, nil
}

func (r *dockerRunner) setStatus(t *task, name, status string) {
	r.d.mu.Lock()
	defer r.d.mu.Unlock()
	if c := r.state(t, name); c != nil {
		c.lastStatus = status
	}
}

// create creates one container of the task with the definition's settings
// mapped to Docker's, and records its ID.
func (r *dockerRunner) create(ctx context.Context, t *task, def ContainerDefinition, networkMode string) (string, error) {
	r.d.mu.Lock()
	envMap := t.env[def.Name]
	r.d.mu.Unlock()
	env := make([]string, 0, len(envMap))
	for k, v := range envMap {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	labels := map[string]string{
		LabelCluster:   r.d.ClusterName,
		LabelTask:      t.id,
		labelTaskArn:   t.arn,
		labelContainer: def.Name,
		labelECSClust:  r.d.ClusterName,
	}
	for k, v := range def.DockerLabels {
		labels[k] = v
	}
	cfg := &container.Config{
		Image:      def.Image,
		User:       def.User,
		Env:        env,
		Labels:     labels,
		Cmd:        def.Command,
		Entrypoint: def.EntryPoint,
	}
	if def.StopTimeout > 0 {
		cfg.StopTimeout = &def.StopTimeout
	}
	if hc := def.HealthCheck; hc != nil {
		cfg.Healthcheck = &container.HealthConfig{
			Test:        hc.Command,
			Interval:    r.d.opts.HealthCheckInterval,
			Timeout:     time.Duration(max(hc.Timeout, 1)) * time.Second,
			Retries:     hc.Retries,
			StartPeriod: time.Duration(hc.StartPeriod) * time.Second,
		}
	}
	hc := hostConfig(def, networkMode)
	hc.SecurityOpt = append(append([]string(nil), r.d.opts.DaemonSecurityOptions...), hc.SecurityOpt...)
	hc.Binds = r.d.opts.Binds[def.Name]
	if !strings.HasPrefix(networkMode, "container:") {
		hc.ExtraHosts = r.d.opts.ExtraHosts // containers joining a namespace share its /etc/hosts
	}
	// The engine finishes a create whose client went away, so a create
	// cancelled mid-flight would leave a container nobody knows: create
	// detached from cancellation (bounded), so its ID is always recorded
	// and the task's release removes it.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	id, err := r.cli.ContainerCreate(cctx, cfg, hc, nil, nil, r.containerName(t, def.Name))
	if err != nil {
		return "", fmt.Errorf("CannotCreateContainerError: %s: %w", def.Name, err)
	}
	r.d.mu.Lock()
	if c := r.state(t, def.Name); c != nil {
		c.runtimeID = id.ID
	}
	r.d.mu.Unlock()
	return id.ID, nil
}

// hostConfig maps a container definition's security and resource settings
// to Docker, the way the ECS agent does.
func hostConfig(def ContainerDefinition, networkMode string) *container.HostConfig {
	hc := &container.HostConfig{
		NetworkMode:    container.NetworkMode(networkMode),
		ReadonlyRootfs: def.ReadonlyRootFilesystem,
		Privileged:     def.Privileged,
		SecurityOpt:    def.DockerSecurityOptions,
	}
	hc.Memory = def.Memory << 20
	hc.MemoryReservation = def.MemoryReservation << 20
	if def.Cpu > 0 {
		hc.CPUShares = max(def.Cpu, 2)
	}
	for _, u := range def.Ulimits {
		soft, hard := clampUlimit(u.Name, u.SoftLimit, u.HardLimit)
		hc.Ulimits = append(hc.Ulimits, &container.Ulimit{Name: u.Name, Soft: soft, Hard: hard})
	}
	if lp := def.LinuxParameters; lp != nil {
		if lp.Capabilities != nil {
			hc.CapAdd = lp.Capabilities.Add
			hc.CapDrop = lp.Capabilities.Drop
		}
		if lp.InitProcessEnabled != nil && *lp.InitProcessEnabled {
			hc.Init = lp.InitProcessEnabled
		}
		if lp.SharedMemorySize != nil {
			hc.ShmSize = *lp.SharedMemorySize << 20
		}
		if len(lp.Tmpfs) > 0 {
			hc.Tmpfs = map[string]string{}
			for _, m := range lp.Tmpfs {
				opts := append(append([]string{}, m.MountOptions...), fmt.Sprintf("size=%dm", m.Size))
				hc.Tmpfs[m.ContainerPath] = strings.Join(opts, ",")
			}
		}
	}
	return hc
}

// clampUlimit lowers a nofile limit to this host's hard limit: the daemon
// cannot raise it (an EC2 container instance allows the template's 65536;
// a developer machine or CI runner may not), and failing every task for it
// would test nothing. Other limits pass unchanged.
func clampUlimit(name string, soft, hard int64) (int64, int64) {
	if name != "nofile" {
		return soft, hard
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Max >= uint64(hard) {
		return soft, hard
	}
	hostMax := int64(lim.Max)
	return min(soft, hostMax), hostMax
}

func (r *dockerRunner) run(ctx context.Context, t *task) (<-chan exitInfo, error) {
	order, err := startOrder(r.d.defs)
	if err != nil {
		return nil, err
	}
	r.d.mu.Lock()
	holderID := r.state(t, order[0].Name).runtimeID
	r.d.mu.Unlock()
	ids := map[string]string{order[0].Name: holderID}
	for _, def := range order[1:] {
		for _, dep := range def.DependsOn {
			if err := r.waitCondition(ctx, t, dep, ids[dep.ContainerName]); err != nil {
				return nil, err
			}
		}
		id, err := r.create(ctx, t, def, "container:"+holderID)
		if err != nil {
			return nil, err
		}
		if err := r.cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
			return nil, fmt.Errorf("CannotStartContainerError: %s: %w", def.Name, err)
		}
		ids[def.Name] = id
		r.setStatus(t, def.Name, "RUNNING")
	}
	exits := make(chan exitInfo, len(order))
	r.mu.Lock()
	if r.exits == nil {
		r.exits = map[*task]chan exitInfo{}
	}
	r.exits[t] = exits
	r.mu.Unlock()
	for _, def := range order {
		if !def.IsEssential() {
			continue
		}
		r.watchExit(t, def.Name, ids[def.Name], exits)
	}
	return exits, nil
}

// watchExit reports the container's exit on exits. It stops watching when
// the double closes.
func (r *dockerRunner) watchExit(t *task, name, id string, exits chan<- exitInfo) {
	r.d.wg.Add(1)
	go func() {
		defer r.d.wg.Done()
		ok, errc := r.cli.ContainerWait(r.d.ctx, id, container.WaitConditionNotRunning)
		select {
		case res := <-ok:
			exits <- exitInfo{container: name, code: int(res.StatusCode)}
		case <-errc:
		case <-t.done:
		}
	}()
}

// waitCondition waits until the dependency reaches its dependsOn condition.
func (r *dockerRunner) waitCondition(ctx context.Context, t *task, dep Dependency, id string) error {
	if id == "" {
		return fmt.Errorf("dependency %s was not started", dep.ContainerName)
	}
	ctx, cancel := context.WithTimeout(ctx, containerStartTimeout)
	defer cancel()
	switch dep.Condition {
	case "START", "":
		return nil
	case "HEALTHY":
		if err := r.waitHealthy(ctx, id); err != nil {
			return fmt.Errorf("dependency %s did not become HEALTHY: %w: %s", dep.ContainerName, err, r.logTail(id))
		}
		r.d.mu.Lock()
		r.state(t, dep.ContainerName).health = "HEALTHY"
		r.d.mu.Unlock()
		return nil
	case "COMPLETE", "SUCCESS":
		ok, errc := r.cli.ContainerWait(ctx, id, container.WaitConditionNotRunning)
		select {
		case res := <-ok:
			if dep.Condition == "SUCCESS" && res.StatusCode != 0 {
				return fmt.Errorf("dependency %s exited %d", dep.ContainerName, res.StatusCode)
			}
			return nil
		case err := <-errc:
			return err
		}
	}
	return fmt.Errorf("dependsOn condition %q is not supported", dep.Condition)
}

// waitHealthy follows the container's events until Docker reports it
// healthy; it fails if the container dies or turns unhealthy.
func (r *dockerRunner) waitHealthy(ctx context.Context, id string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	msgs, errs := r.cli.Events(ctx, events.ListOptions{Filters: filters.NewArgs(
		filters.Arg("type", string(events.ContainerEventType)),
		filters.Arg("container", id),
	)})
	// Subscribed first, so a change between here and the inspect is seen.
	info, err := r.cli.ContainerInspect(ctx, id)
	if err != nil {
		return err
	}
	if info.State == nil || !info.State.Running {
		return errors.New("container is not running")
	}
	if info.State.Health == nil {
		return errors.New("container has no health check")
	}
	switch info.State.Health.Status {
	case container.Healthy:
		return nil
	case container.Unhealthy:
		return errors.New("container is unhealthy")
	}
	for {
		select {
		case m := <-msgs:
			switch {
			case m.Action == "health_status: healthy":
				return nil
			case m.Action == "health_status: unhealthy":
				return errors.New("container is unhealthy")
			case m.Action == events.ActionDie:
				return errors.New("container exited")
			}
		case err := <-errs:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// logTail returns the last lines a container wrote, for failure reasons
// (ECS would point at CloudWatch Logs).
func (r *dockerRunner) logTail(id string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc, err := r.cli.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: "10"})
	if err != nil {
		return "(no logs: " + err.Error() + ")"
	}
	defer rc.Close()
	var out, errOut bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &errOut, rc); err != nil {
		return "(no logs: " + err.Error() + ")"
	}
	return strings.TrimSpace(out.String() + errOut.String())
}

func (r *dockerRunner) stopContainers(ctx context.Context, t *task) map[string]int {
	order, _ := startOrder(r.d.defs)
	codes := map[string]int{}
	for i := len(order) - 1; i >= 0; i-- {
		def := order[i]
		r.d.mu.Lock()
		id := r.state(t, def.Name).runtimeID
		r.d.mu.Unlock()
		if id == "" {
			continue
		}
		if err := r.cli.ContainerStop(ctx, id, container.StopOptions{}); err != nil {
			r.d.opts.Logf("ecsdouble: stop %s: %v", def.Name, err)
		}
		info, err := r.cli.ContainerInspect(ctx, id)
		if err == nil && info.State != nil {
			codes[def.Name] = info.State.ExitCode
		}
	}
	return codes
}

func (r *dockerRunner) release(ctx context.Context, t *task) {
	r.mu.Lock()
	delete(r.exits, t)
	r.mu.Unlock()
	r.d.mu.Lock()
	var ids []string
	for _, c := range t.containers {
		if c.runtimeID != "" {
			ids = append(ids, c.runtimeID)
		}
	}
	r.d.mu.Unlock()
	for i := len(ids) - 1; i >= 0; i-- {
		if err := r.cli.ContainerRemove(ctx, ids[i], container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !client.IsErrNotFound(err) {
			r.d.opts.Logf("ecsdouble: remove container %s: %v", ids[i], err)
		}
	}
}

func (r *dockerRunner) exit(t *task, name string, _ int) error {
	r.d.mu.Lock()
	c := r.state(t, name)
	var id string
	if c != nil {
		id = c.runtimeID
	}
	r.d.mu.Unlock()
	if id == "" {
		return fmt.Errorf("container %s is not running", name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return r.cli.ContainerKill(ctx, id, "KILL")
}
