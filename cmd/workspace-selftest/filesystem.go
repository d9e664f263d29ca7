package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/workspaced/workspaced/selftest"
)

// tmpfsSpec is one configured tmpfs (docs/contracts.md §6, the task definition).
type tmpfsSpec struct {
	path   string
	sizeMB int64
	noexec bool
}

// workspaceTmpfs are the writable places of the read-only root (their
// sizes are runtime/docker's and the task definition's, docs/decisions.md
// D30).
var workspaceTmpfs = []tmpfsSpec{
	{"/tmp", 256, false},
	{"/var/tmp", 64, true},
	{"/run", 16, true},
	{"/home/appuser/.cache", 256, true},
	{"/home/appuser", 64, true},
	{"/workspace", 512, false},
}

// runtimeMounts are the writable mounts every container has besides the
// configured tmpfs (the engine's /proc, /dev and friends).
var runtimeMounts = []string{"/proc", "/dev", "/dev/pts", "/dev/mqueue", "/dev/shm"}

// engineFiles are the files the engine bind-mounts from its own state
// directory into every container.
var engineFiles = []string{"/etc/hosts", "/etc/hostname", "/etc/resolv.conf"}

// socketDir is the workspace's socket directory on Docker, the one host
// directory a workspace has.
const socketDir = "/var/run/ws"

// virtualFS are filesystem types that hold no host files.
var virtualFS = []string{"tmpfs", "proc", "sysfs", "devpts", "mqueue", "cgroup", "cgroup2", "devtmpfs",
	"securityfs", "debugfs", "tracefs", "nsfs", "bpf", "pstore", "hugetlbfs", "configfs", "fusectl", "binfmt_misc", "autofs"}

// mountInfo is one line of /proc/self/mountinfo.
type mountInfo struct {
	root, point, fstype, source string
	opts, superOpts             []string
}

func readMountInfo() ([]mountInfo, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	var ms []mountInfo
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 6 || len(g) < 3 {
			continue
		}
		ms = append(ms, mountInfo{root: unescape(f[3]), point: unescape(f[4]), opts: strings.Split(f[5], ","),
			fstype: g[0], source: g[1], superOpts: strings.Split(g[2], ",")})
	}
	return ms, nil
}

// unescape decodes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// lastMount returns the mount visible at point (the last one mounted there).
func lastMount(ms []mountInfo, point string) (mountInfo, bool) {
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i].point == point {
			return ms[i], true
		}
	}
	return mountInfo{}, false
}

// filesystemChecks: read-only root, exactly the configured writable
// mounts, no host paths, no sockets but the workspace's own.
func filesystemChecks(_ context.Context, cfg config, env runtimeEnv) []selftest.Check {
	ms, err := readMountInfo()
	if err != nil {
		return []selftest.Check{check("filesystem.mounts", "readable /proc/self/mountinfo", err.Error(), false, "the mounts cannot be checked")}
	}
	return []selftest.Check{
		rootReadOnly(ms),
		tmpfsCheck(ms),
		writableMounts(ms, env),
		hostPaths(ms, env),
		socketsCheck(cfg, env),
	}
}

func rootReadOnly(ms []mountInfo) selftest.Check {
	root, _ := lastMount(ms, "/")
	probe := "/.selftest-probe"
	err := os.WriteFile(probe, nil, 0o600)
	if err == nil {
		_ = os.Remove(probe)
	}
	obs := fmt.Sprintf("/ mounted %s; creating %s: %v", strings.Join(root.opts, ","), probe, err)
	return check("filesystem.root_readonly", "/ mounted ro; writes fail with EROFS", obs,
		slices.Contains(root.opts, "ro") && errors.Is(err, unix.EROFS),
		"the image can be modified at run time: tools and the agent itself can be replaced")
}

func tmpfsCheck(ms []mountInfo) selftest.Check {
	var bad, seen []string
	for _, t := range workspaceTmpfs {
		m, ok := lastMount(ms, t.path)
		if !ok || m.fstype != "tmpfs" {
			bad = append(bad, t.path+" is not a tmpfs")
			continue
		}
		size := ""
		for _, o := range m.superOpts {
			if v, ok := strings.CutPrefix(o, "size="); ok {
				size = v
			}
		}
		want := strconv.FormatInt(t.sizeMB*1024, 10) + "k"
		noexec := slices.Contains(m.opts, "noexec")
		seen = append(seen, fmt.Sprintf("%s size=%s %s", t.path, size, strings.Join(m.opts, ",")))
		switch {
		case size != want:
			bad = append(bad, fmt.Sprintf("%s size %s, want %s", t.path, size, want))
		case !slices.Contains(m.opts, "nosuid") || !slices.Contains(m.opts, "nodev"):
			bad = append(bad, t.path+" lacks nosuid or nodev")
		case noexec != t.noexec:
			bad = append(bad, fmt.Sprintf("%s noexec=%v, want %v", t.path, noexec, t.noexec))
		}
	}
	obs := strings.Join(seen, "; ")
	if len(bad) > 0 {
		obs = strings.Join(bad, "; ") + " (" + obs + ")"
	}
	return check("filesystem.tmpfs",
		"tmpfs /tmp 256m, /var/tmp 64m noexec, /run 16m noexec, /home/appuser/.cache 256m noexec, /home/appuser 64m noexec, /workspace 512m; all nosuid,nodev",
		obs, len(bad) == 0, "the writable places are not bounded or not restricted as configured")
}

func writableMounts(ms []mountInfo, env runtimeEnv) selftest.Check {
	allowed := slices.Clone(runtimeMounts)
	allowed = append(allowed, engineFiles...)
	for _, t := range workspaceTmpfs {
		allowed = append(allowed, t.path)
	}
	if env.runtime == selftest.RuntimeDocker {
		allowed = append(allowed, socketDir)
	}
	var extra []string
	for _, m := range ms {
		if m.point == "/" || !slices.Contains(m.opts, "rw") || slices.Contains(allowed, m.point) {
			continue
		}
		if strings.HasPrefix(m.point, "/proc/") || strings.HasPrefix(m.point, "/sys/") {
			continue // the engine's masks (/dev/null or an empty tmpfs over kernel files)
		}
		if visible, _ := lastMount(ms, m.point); visible.point == m.point && !slices.Contains(visible.opts, "rw") {
			continue // hidden under a later read-only mount
		}
		extra = append(extra, fmt.Sprintf("%s (%s)", m.point, m.fstype))
	}
	obs := "none besides the configured tmpfs and the engine's mounts"
	if len(extra) > 0 {
		obs = "also writable: " + strings.Join(extra, ", ")
	}
	return check("filesystem.writable_mounts", "no writable mount besides the configured tmpfs (and the engine's /proc, /dev, /dev/pts, /dev/mqueue, /dev/shm, /etc/hosts, /etc/hostname, /etc/resolv.conf"+dockerSuffix(env, ", "+socketDir)+")",
		obs, len(extra) == 0, "a writable mount outside the configured tmpfs: unbounded disk use, or writes that reach the host")
}

func dockerSuffix(env runtimeEnv, s string) string {
	if env.runtime == selftest.RuntimeDocker {
		return s
	}
	return ""
}

func hostPaths(ms []mountInfo, env runtimeEnv) selftest.Check {
	var found []string
	for _, m := range ms {
		if m.point == "/" || slices.Contains(virtualFS, m.fstype) || slices.Contains(engineFiles, m.point) {
			continue
		}
		if env.runtime == selftest.RuntimeDocker && m.point == socketDir {
			continue
		}
		found = append(found, fmt.Sprintf("%s from %s:%s (%s)", m.point, m.source, m.root, m.fstype))
	}
	obs := "none"
	if len(found) > 0 {
		obs = strings.Join(found, "; ")
	}
	return check("filesystem.host_paths", "no host directory or file mounted (besides the engine's /etc/hosts, /etc/hostname, /etc/resolv.conf"+dockerSuffix(env, " and the socket directory "+socketDir)+")",
		obs, len(found) == 0, "host files are visible inside the workspace")
}

// socketsCheck walks the filesystem (not /proc, /sys) for Unix sockets
// and for anything named like a container engine's socket.
func socketsCheck(cfg config, env runtimeEnv) selftest.Check {
	own := []string{}
	if env.runtime == selftest.RuntimeDocker {
		own = []string{env.agentSocket, filepath.Join(socketDir, "proxy.sock")}
	}
	var found []string
	n := 0
	partial := false
	_ = filepath.WalkDir("/", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() && (path == "/proc" || path == "/sys") {
			return fs.SkipDir
		}
		if n++; n > cfg.scanBudget*4 {
			partial = true
			return fs.SkipAll
		}
		name := d.Name()
		engine := name == "docker.sock" || name == "containerd.sock" || name == "dockershim.sock" || name == "crio.sock" || name == "podman.sock"
		if (d.Type()&fs.ModeSocket != 0 && !slices.Contains(own, path)) || engine {
			found = append(found, path)
		}
		return nil
	})
	obs := fmt.Sprintf("%d entries examined; no foreign socket", n)
	if len(found) > 0 {
		obs = fmt.Sprintf("%d entries examined; sockets: %s", n, strings.Join(found, ", "))
	}
	if partial {
		obs += " (walk stopped at the budget)"
	}
	expect := "no Unix socket in the filesystem"
	if len(own) > 0 {
		expect = "no Unix socket but the workspace's own " + strings.Join(own, " and ") + "; no container engine socket"
	}
	return check("filesystem.sockets", expect, obs, len(found) == 0,
		"a socket from outside the workspace is reachable: a Docker socket is root on the host")
}
