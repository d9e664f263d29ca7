package docker

import (
	"context"
	"fmt"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/workspaced/workspaced/workspace"
)

// Stop stops the workspace (SIGTERM, then SIGKILL after StopGrace), removes
// its container, closes its proxy and removes its socket directory. A
// workspace that is unknown or already gone is not an error; neither is a
// concurrent Stop of the same workspace. reason is logged.
func (r *Runtime) Stop(ctx context.Context, id, reason string) error {
	c, err := r.engine.ContainerInspect(ctx, id)
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stop workspace %s: inspect: %w", id, err)
	}
	if c.Config == nil || !r.managed(c.Config.Labels) {
		return nil // not ours: nothing of this runtime to stop
	}
	token := c.Config.Labels[LabelToken]
	r.log.Info("stopping workspace", "container_id", c.ID, "token", token, "reason", reason)
	// Once begun, stop and remove run to the end even when ctx ends (a
	// shutting-down loop): the engine goes on stopping a container whose
	// request was cancelled, and a cancelled remove would leave it Exited.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.opts.StopGrace+time.Minute)
	defer cancel()
	grace := int((r.opts.StopGrace + time.Second - 1) / time.Second)
	if err := r.engine.ContainerStop(ctx, c.ID, container.StopOptions{Timeout: &grace}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("stop workspace %s: %w", id, err)
	}
	// The agent is dead: release its host side (proxy listener, socket
	// directory) before removing the container, so the engine's destroy
	// event means everything is gone.
	if workspace.ValidToken(token) == nil { // never join an unchecked label into a path
		r.release(token)
	}
	err = r.engine.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
	if cerrdefs.IsConflict(err) {
		// Another Stop is removing it: return once it is gone.
		err = r.waitRemoved(ctx, c.ID)
	}
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("stop workspace %s: remove: %w", id, err)
	}
	return nil
}

// waitRemoved blocks until container id no longer exists.
func (r *Runtime) waitRemoved(ctx context.Context, id string) error {
	res, errs := r.engine.ContainerWait(ctx, id, container.WaitConditionRemoved)
	select {
	case <-res:
		return nil
	case err := <-errs:
		return err
	}
}

// Inspect reports the workspace's state, or workspace.ErrNotFound when no
// container of this runtime has that ID (or name).
func (r *Runtime) Inspect(ctx context.Context, id string) (workspace.Info, error) {
	c, err := r.engine.ContainerInspect(ctx, id)
	if cerrdefs.IsNotFound(err) {
		return workspace.Info{}, fmt.Errorf("inspect workspace %s: %w", id, workspace.ErrNotFound)
	}
	if err != nil {
		return workspace.Info{}, fmt.Errorf("inspect workspace %s: %w", id, err)
	}
	if c.Config == nil || !r.managed(c.Config.Labels) {
		return workspace.Info{}, fmt.Errorf("inspect workspace %s: %w", id, workspace.ErrNotFound)
	}
	return r.infoFromInspect(c), nil
}

func (r *Runtime) infoFromInspect(c container.InspectResponse) workspace.Info {
	info := r.withClaim(r.infoFromLabels(c.ID, c.Config.Labels))
	if c.State == nil {
		info.Status = workspace.StatusPending
		return info
	}
	info.Status = statusOf(c.State.Status)
	if info.Status == workspace.StatusStopped {
		code := c.State.ExitCode
		info.ExitCode = &code
		info.StoppedReason = stoppedReason(c.State)
	}
	return info
}

// List returns every container of this runtime (LabelManagedBy plus
// Options.Labels), running or not; stopped ones are reported STOPPED.
func (r *Runtime) List(ctx context.Context) ([]workspace.Info, error) {
	args := filters.NewArgs(filters.Arg("label", LabelManagedBy+"="+ManagedBy))
	for k, v := range r.opts.Labels {
		args.Add("label", k+"="+v)
	}
	cs, err := r.engine.ContainerList(ctx, container.ListOptions{All: true, Filters: args})
	if err != nil {
		return nil, fmt.Errorf("list workspaces: %w", err)
	}
	out := make([]workspace.Info, 0, len(cs))
	for _, c := range cs {
		if !r.managed(c.Labels) {
			continue
		}
		info := r.withClaim(r.infoFromLabels(c.ID, c.Labels))
		info.Status = statusOf(c.State)
		out = append(out, info)
	}
	return out, nil
}
