package docker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"

	"github.com/workspaced/workspaced/workspace"
)

// Paths inside the workspace container, and the agent's environment. The
// agent (cmd/workspace-agent) reads these variable names.
const (
	// ContainerSocketDir is where the workspace's socket directory is
	// mounted inside the container.
	ContainerSocketDir = "/var/run/ws"
	agentSocketName    = "agent.sock"
	proxySocketName    = "proxy.sock"

	envListenMode  = "WORKSPACE_LISTEN_MODE"
	envSocketPath  = "WORKSPACE_SOCKET_PATH"
	envProxySocket = "WORKSPACE_PROXY_SOCKET"
	homeDir        = "/home/appuser"
	workDir        = "/workspace"
)

// Capabilities a workspace keeps (docs/contracts.md §6); everything else is dropped.
var workspaceCaps = []string{"CHOWN", "SETUID", "SETGID", "DAC_OVERRIDE"}

// tmpfsMount is one tmpfs of docs/contracts.md §6.
type tmpfsMount struct {
	path    string
	sizeMiB int64
	// noexec forbids executing from the mount; /tmp and /workspace allow
	// it (build tools and tests run binaries there).
	noexec bool
	// owned mounts belong to uid:gid (appuser writes there); the others
	// stay root's 0755.
	owned bool
}

// workspaceTmpfs are the writable places of the read-only root. With
// /dev/shm (shmMiB) they total 1232 MiB: a 2 GiB workspace keeps 816 MiB
// for its processes (workspace.CheckScratch, docs/decisions.md D30).
var workspaceTmpfs = []tmpfsMount{
	{path: "/tmp", sizeMiB: 256, owned: true},
	{path: "/var/tmp", sizeMiB: 64, noexec: true, owned: true},
	{path: "/run", sizeMiB: 16, noexec: true},
	{path: homeDir + "/.cache", sizeMiB: 256, noexec: true, owned: true},
	{path: homeDir, sizeMiB: 64, noexec: true, owned: true},
	{path: workDir, sizeMiB: 512, owned: true},
}

// shmMiB is /dev/shm's size (Docker's default, set explicitly: it is a
// tmpfs too and counts against the memory limit).
const shmMiB = 64

// TmpfsSizes returns every tmpfs of a workspace, /dev/shm included, with
// its size in MiB: what the ECS task definition must match
// (terraform/templates_test.go) and workspace.CheckScratch weighs.
func TmpfsSizes() map[string]int64 {
	sizes := map[string]int64{"/dev/shm": shmMiB}
	for _, m := range workspaceTmpfs {
		sizes[m.path] = m.sizeMiB
	}
	return sizes
}

// tmpfsOptions renders m's mount options. The engine adds noexec, nosuid
// and nodev unless told otherwise, so exec is spelled out where allowed.
func (r *Runtime) tmpfsOptions(m tmpfsMount) string {
	opts := "rw,nosuid,nodev,size=" + strconv.FormatInt(m.sizeMiB, 10) + "m"
	if m.noexec {
		opts += ",noexec"
	} else {
		opts += ",exec"
	}
	if m.owned {
		opts += ",uid=" + strconv.Itoa(r.opts.UID) + ",gid=" + strconv.Itoa(r.opts.GID) + ",mode=0755"
	} else {
		opts += ",mode=0755"
	}
	return opts
}

// ContainerSpec returns the container Start creates for spec: its
// configuration (image, user, environment, labels) and host configuration
// (hardening, limits, tmpfs mounts, and the bind mount of the socket
// directory, whose host side is the mount's Source). Start also creates
// that directory (mode 0750, owned by the agent's uid:gid) and opens the
// workspace's proxy listener in it before it creates the container. For
// the engine-floor comparison of make bench (cmd/workspaced
// BenchmarkCompare), which must create exactly this container.
func (r *Runtime) ContainerSpec(spec workspace.StartSpec) (*container.Config, *container.HostConfig, error) {
	if err := workspace.ValidToken(spec.Token); err != nil {
		return nil, nil, fmt.Errorf("container spec: %w", err)
	}
	return r.containerConfig(spec)
}

// containerConfig builds the container of docs/contracts.md §6 for spec.
func (r *Runtime) containerConfig(spec workspace.StartSpec) (*container.Config, *container.HostConfig, error) {
	var compact bytes.Buffer
	if err := json.Compact(&compact, r.opts.SeccompProfile); err != nil {
		return nil, nil, workspace.Terminal(fmt.Errorf("seccomp profile is not JSON: %w", err))
	}
	grace := int((r.opts.StopGrace + 999_999_999) / 1_000_000_000)
	env := append([]string{
		envListenMode + "=uds",
		envSocketPath + "=" + ContainerSocketDir + "/" + agentSocketName,
		"HOME=" + homeDir,
	}, r.opts.Env...)
	if r.opts.Proxy != nil {
		env = append(env, envProxySocket+"="+ContainerSocketDir+"/"+proxySocketName)
	}
	cfg := &container.Config{
		Image:       r.opts.Image,
		User:        strconv.Itoa(r.opts.UID) + ":" + strconv.Itoa(r.opts.GID),
		Env:         env,
		WorkingDir:  workDir,
		Hostname:    "workspace",
		Labels:      r.labelsFor(spec),
		StopTimeout: &grace,
	}
	tmpfs := make(map[string]string, len(workspaceTmpfs))
	for _, m := range workspaceTmpfs {
		tmpfs[m.path] = r.tmpfsOptions(m)
	}
	pids := r.opts.PidsLimit
	securityOpt := []string{"no-new-privileges:true", "seccomp=" + compact.String()}
	if r.opts.AppArmorProfile != "" {
		securityOpt = append(securityOpt, "apparmor="+r.opts.AppArmorProfile)
	}
	host := &container.HostConfig{
		NetworkMode:    "none",
		CapDrop:        []string{"ALL"},
		CapAdd:         append([]string(nil), workspaceCaps...),
		ReadonlyRootfs: true,
		Tmpfs:          tmpfs,
		SecurityOpt:    securityOpt,
		IpcMode:        container.IPCModePrivate,
		ShmSize:        shmMiB << 20,
		Privileged:     false,
		RestartPolicy:  container.RestartPolicy{Name: container.RestartPolicyDisabled},
		LogConfig: container.LogConfig{
			Type:   "json-file",
			Config: map[string]string{"max-size": "10m", "max-file": "3"},
		},
		Mounts: []mount.Mount{{
			Type:        mount.TypeBind,
			Source:      r.socketDir(spec.Token),
			Target:      ContainerSocketDir,
			BindOptions: &mount.BindOptions{Propagation: mount.PropagationRPrivate},
		}},
		Resources: container.Resources{
			NanoCPUs:   r.opts.NanoCPUs,
			Memory:     r.opts.MemoryBytes,
			MemorySwap: r.opts.MemoryBytes, // equal to Memory: no swap
			PidsLimit:  &pids,
		},
	}
	return cfg, host, nil
}

// socketDir is the host directory of token's sockets. token must be valid
// (ValidToken forbids '/' and "..").
func (r *Runtime) socketDir(token string) string {
	return filepath.Join(r.opts.SocketBasePath, token)
}

// agentSocket is the host path of token's agent socket.
func (r *Runtime) agentSocket(token string) string {
	return filepath.Join(r.socketDir(token), agentSocketName)
}
