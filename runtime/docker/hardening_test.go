package docker

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/mount"

	"github.com/workspaced/workspaced/deploy/seccomp"
	"github.com/workspaced/workspaced/runtime/runtimetest"
	"github.com/workspaced/workspaced/workspace"
)

// TestStartAppliesEveryHardeningSetting inspects a started workspace and
// checks each setting of docs/contracts.md §6 as the engine recorded it.
func TestStartAppliesEveryHardeningSetting(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := testCtx(t, 2*time.Minute)
	info, err := e.rt.Start(ctx, workspace.StartSpec{Token: runtimetest.Token(t), Conversation: "c1"})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	c, err := e.cli.ContainerInspect(ctx, info.ID)
	if err != nil {
		t.Fatalf("inspect: %v", err)
	}
	h := c.HostConfig

	if h.NetworkMode != "none" {
		t.Errorf("NetworkMode = %q, want none", h.NetworkMode)
	}
	if !slices.Equal(h.CapDrop, []string{"ALL"}) {
		t.Errorf("CapDrop = %v, want [ALL]", h.CapDrop)
	}
	// The engine may record capabilities with or without the CAP_ prefix.
	var caps []string
	for _, c := range h.CapAdd {
		caps = append(caps, strings.TrimPrefix(c, "CAP_"))
	}
	if got := slices.Sorted(slices.Values(caps)); !slices.Equal(got, []string{"CHOWN", "DAC_OVERRIDE", "SETGID", "SETUID"}) {
		t.Errorf("CapAdd = %v, want CHOWN DAC_OVERRIDE SETGID SETUID", got)
	}
	if !h.ReadonlyRootfs {
		t.Error("ReadonlyRootfs = false")
	}
	if h.Privileged {
		t.Error("Privileged = true")
	}
	if c.Config.User != "1000:1000" {
		t.Errorf("User = %q, want 1000:1000", c.Config.User)
	}
	if h.IpcMode != "private" {
		t.Errorf("IpcMode = %q, want private", h.IpcMode)
	}
	if h.NanoCPUs != 2_000_000_000 {
		t.Errorf("NanoCPUs = %d, want 2e9", h.NanoCPUs)
	}
	if h.Memory != 2<<30 || h.MemorySwap != 2<<30 {
		t.Errorf("Memory = %d, MemorySwap = %d, want 2 GiB each (no swap)", h.Memory, h.MemorySwap)
	}
	if h.PidsLimit == nil || *h.PidsLimit != 256 {
		t.Errorf("PidsLimit = %v, want 256", h.PidsLimit)
	}
	if h.Init != nil && *h.Init {
		t.Error("Init = true: docker-init would be bind-mounted from the host")
	}

	t.Run("security options", func(t *testing.T) {
		if !slices.Contains(h.SecurityOpt, "no-new-privileges:true") {
			t.Errorf("SecurityOpt %v lacks no-new-privileges:true", h.SecurityOpt)
		}
		var profile string
		for _, o := range h.SecurityOpt {
			if p, ok := strings.CutPrefix(o, "seccomp="); ok {
				profile = p
			}
			if strings.Contains(o, "unconfined") {
				t.Errorf("SecurityOpt %q is unconfined", o)
			}
		}
		var want bytes.Buffer
		if err := json.Compact(&want, seccomp.Profile()); err != nil {
			t.Fatal(err)
		}
		if profile != want.String() {
			t.Errorf("seccomp option is not the shipped profile (got %d bytes, want %d)", len(profile), want.Len())
		}
	})

	t.Run("tmpfs", func(t *testing.T) {
		want := map[string]struct {
			size          string
			noexec, owned bool
		}{
			"/tmp":                 {"256m", false, true},
			"/var/tmp":             {"64m", true, true},
			"/run":                 {"16m", true, false},
			"/home/appuser/.cache": {"256m", true, true},
			"/home/appuser":        {"64m", true, true},
			"/workspace":           {"512m", false, true},
		}
		if h.ShmSize != 64<<20 {
			t.Errorf("ShmSize %d, want 64 MiB (it counts against the memory limit)", h.ShmSize)
		}
		if len(h.Tmpfs) != len(want) {
			t.Errorf("Tmpfs has %d mounts %v, want %d", len(h.Tmpfs), h.Tmpfs, len(want))
		}
		for path, w := range want {
			opts, ok := h.Tmpfs[path]
			if !ok {
				t.Errorf("no tmpfs at %s", path)
				continue
			}
			set := strings.Split(opts, ",")
			check := func(opt string, present bool) {
				if slices.Contains(set, opt) != present {
					t.Errorf("tmpfs %s options %q: %q present=%v, want %v", path, opts, opt, !present, present)
				}
			}
			check("size="+w.size, true)
			check("nosuid", true)
			check("noexec", w.noexec)
			check("exec", !w.noexec)
			check("uid=1000", w.owned)
			check("gid=1000", w.owned)
		}
	})

	t.Run("mounts", func(t *testing.T) {
		if len(h.Binds) != 0 {
			t.Errorf("Binds = %v, want none", h.Binds)
		}
		if len(h.Mounts) != 1 {
			t.Fatalf("Mounts = %+v, want exactly the socket directory", h.Mounts)
		}
		m := h.Mounts[0]
		if m.Type != mount.TypeBind || m.Source != e.rt.socketDir(info.Token) || m.Target != "/var/run/ws" {
			t.Errorf("mount = %+v, want bind %s → /var/run/ws", m, e.rt.socketDir(info.Token))
		}
		for _, mp := range c.Mounts {
			if mp.Type == mount.TypeBind && mp.Source != e.rt.socketDir(info.Token) {
				t.Errorf("container has a host bind mount %s → %s", mp.Source, mp.Destination)
			}
			if strings.Contains(mp.Source, "docker.sock") || strings.Contains(mp.Destination, "docker.sock") {
				t.Errorf("the Docker socket is mounted: %+v", mp)
			}
			if mp.Type == mount.TypeVolume {
				t.Errorf("container has a volume %+v", mp)
			}
		}
	})

	t.Run("socket directory", func(t *testing.T) {
		st, err := os.Stat(e.rt.socketDir(info.Token))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o750 || !st.IsDir() {
			t.Errorf("socket dir mode %v, want drwxr-x---", st.Mode())
		}
		if uid, gid := owner(st); uid != 1000 || gid != 1000 {
			t.Errorf("socket dir owned by %d:%d, want 1000:1000", uid, gid)
		}
	})

	t.Run("labels", func(t *testing.T) {
		l := c.Config.Labels
		if l[LabelManagedBy] != "workspaced" || l[LabelToken] != info.Token || l[LabelConversation] != "c1" || l[LabelCreatedAt] == "" {
			t.Errorf("labels %v lack managed-by/token/conversation/created-at", l)
		}
		if c.Name != "/ws-"+info.Token {
			t.Errorf("container name %q, want /ws-%s", c.Name, info.Token)
		}
	})
}

// ContainerSpec describes the container Start creates (the engine-floor
// benchmark creates exactly that): the started container carries its
// hardening, limits, tmpfs mounts, socket-directory mount and environment.
func TestContainerSpecIsWhatStartCreates(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := testCtx(t, 2*time.Minute)
	spec := workspace.StartSpec{Token: runtimetest.Token(t), Conversation: "c1"}
	cfg, host, err := e.rt.ContainerSpec(spec)
	if err != nil {
		t.Fatalf("ContainerSpec: %v", err)
	}
	info, err := e.rt.Start(ctx, spec)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	c, err := e.cli.ContainerInspect(ctx, info.ID)
	if err != nil {
		t.Fatalf("inspect: %v", err)
	}
	for _, tc := range []struct {
		name      string
		spec, got any
	}{
		{"image", cfg.Image, c.Config.Image},
		{"user", cfg.User, c.Config.User},
		{"security options", host.SecurityOpt, c.HostConfig.SecurityOpt},
		{"tmpfs", host.Tmpfs, c.HostConfig.Tmpfs},
		{"mounts", host.Mounts, c.HostConfig.Mounts},
		{"resources", [3]int64{host.NanoCPUs, host.Memory, *host.PidsLimit}, [3]int64{c.HostConfig.NanoCPUs, c.HostConfig.Memory, *c.HostConfig.PidsLimit}},
		{"network", host.NetworkMode, c.HostConfig.NetworkMode},
		{"read-only root", host.ReadonlyRootfs, c.HostConfig.ReadonlyRootfs},
	} {
		if !reflect.DeepEqual(tc.spec, tc.got) {
			t.Errorf("%s: spec %v, started container %v", tc.name, tc.spec, tc.got)
		}
	}
	for _, v := range cfg.Env {
		if !slices.Contains(c.Config.Env, v) {
			t.Errorf("environment %q not in the started container's %v", v, c.Config.Env)
		}
	}
	if _, _, err := e.rt.ContainerSpec(workspace.StartSpec{Token: "../x"}); !errors.Is(err, workspace.ErrInvalidSpec) {
		t.Errorf("ContainerSpec of an invalid token: %v, want ErrInvalidSpec", err)
	}
}

// TestInsideTheWorkspace runs commands in a workspace through its agent and
// checks what a process inside actually gets.
func TestInsideTheWorkspace(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	info := e.startReady(t, workspace.StartSpec{Token: runtimetest.Token(t), Conversation: "inside"})

	t.Run("only loopback", func(t *testing.T) {
		r := e.run(t, info, "ls", "/sys/class/net")
		if strings.Fields(r.Output)[0] != "lo" || len(strings.Fields(r.Output)) != 1 {
			t.Errorf("interfaces: %q, want only lo", r.Output)
		}
	})

	t.Run("no route out", func(t *testing.T) {
		// A listener on a host address the workspace could reach if it
		// had any network.
		addr := hostAddress(t)
		ln, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
		if err != nil {
			t.Fatalf("listen on %s: %v", addr, err)
		}
		defer ln.Close()
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		r := e.run(t, info, "nc", "-w", "3", addr, port)
		if r.ExitCode == 0 {
			t.Errorf("nc %s %s from the workspace succeeded: %q", addr, port, r.Output)
		}
		// Nothing may have connected: the command has finished, so a
		// connection would already be queued.
		_ = ln.(*net.TCPListener).SetDeadline(time.Now())
		if c, err := ln.Accept(); err == nil {
			c.Close()
			t.Error("the workspace reached a host listener")
		}
	})

	t.Run("read-only root", func(t *testing.T) {
		if r := e.run(t, info, "touch", "/probe"); r.ExitCode == 0 {
			t.Errorf("touch /probe succeeded: the root filesystem is writable")
		}
		if r := e.run(t, info, "touch", "/workspace/probe"); r.ExitCode != 0 {
			t.Errorf("touch /workspace/probe failed: %q", r.Output)
		}
		if r := e.run(t, info, "touch", "/home/appuser/.cache/probe"); r.ExitCode != 0 {
			t.Errorf("touch in the cache failed: %q", r.Output)
		}
	})

	t.Run("user", func(t *testing.T) {
		if r := e.run(t, info, "id", "-u"); strings.TrimSpace(r.Output) != "1000" {
			t.Errorf("id -u = %q", r.Output)
		}
		if r := e.run(t, info, "id", "-g"); strings.TrimSpace(r.Output) != "1000" {
			t.Errorf("id -g = %q", r.Output)
		}
	})

	t.Run("process status", func(t *testing.T) {
		r := e.run(t, info, "cat", "/proc/self/status")
		status := map[string]string{}
		for _, line := range strings.Split(r.Output, "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok {
				status[k] = strings.TrimSpace(v)
			}
		}
		want := map[string]string{
			"Seccomp":    "2", // filter mode
			"NoNewPrivs": "1",
			// CHOWN(0) DAC_OVERRIDE(1) SETGID(6) SETUID(7): the bounding
			// set is exactly the four capabilities.
			"CapBnd": "00000000000000c3",
			// A uid-1000 process without file capabilities has no
			// effective, permitted or ambient capabilities at all; the
			// four only matter to a process that becomes root, which
			// no-new-privileges and the image (no setuid files) prevent.
			"CapEff": "0000000000000000",
			"CapPrm": "0000000000000000",
			"CapAmb": "0000000000000000",
		}
		for k, v := range want {
			if status[k] != v {
				t.Errorf("/proc/self/status %s = %q, want %q", k, status[k], v)
			}
		}
	})

	t.Run("seccomp profile in force", func(t *testing.T) {
		// adjtimex (read-only) is allowed by Docker's default profile and
		// removed from ours: EPERM proves our profile is the one loaded.
		if r := e.run(t, info, "busybox", "adjtimex"); r.ExitCode == 0 || !strings.Contains(r.Output, "Operation not permitted") {
			t.Errorf("adjtimex: exit %d %q, want EPERM", r.ExitCode, r.Output)
		}
		if r := e.run(t, info, "busybox", "unshare", "-r", "true"); r.ExitCode == 0 {
			t.Errorf("unshare -r (a user namespace) succeeded: %q", r.Output)
		}
	})

	t.Run("tmpfs mounts", func(t *testing.T) {
		r := e.run(t, info, "cat", "/proc/mounts")
		for _, p := range []string{"/tmp", "/var/tmp", "/run", "/home/appuser", "/home/appuser/.cache", "/workspace"} {
			if !strings.Contains(r.Output, "tmpfs "+p+" tmpfs ") {
				t.Errorf("no tmpfs at %s in /proc/mounts:\n%s", p, r.Output)
			}
		}
	})
}

// hostAddress returns a non-loopback IPv4 address of this host.
func hostAddress(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			return n.IP.String()
		}
	}
	t.Fatal("the host has no non-loopback IPv4 address to probe")
	return ""
}
