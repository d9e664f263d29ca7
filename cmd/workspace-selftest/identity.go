package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/workspaced/workspaced/selftest"
)

// identityChecks: who the process is and what it may do.
func identityChecks(ctx context.Context, cfg config, _ runtimeEnv) []selftest.Check {
	status, err := procStatus("/proc/self/status")
	if err != nil {
		status = map[string]string{}
	}
	uid, euid, gid, egid := unix.Getuid(), unix.Geteuid(), unix.Getgid(), unix.Getegid()
	groups, gerr := unix.Getgroups()
	extra := []string{}
	for _, g := range groups {
		if g != gid {
			extra = append(extra, strconv.Itoa(g))
		}
	}
	groupsObs := fmt.Sprintf("groups %v", groups)
	if gerr != nil {
		groupsObs = "getgroups: " + gerr.Error()
	}
	caps := map[string]string{}
	capsOK := true
	for _, k := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"} {
		caps[k] = status[k]
		v, err := strconv.ParseUint(status[k], 16, 64)
		want := uint64(0)
		if k == "CapBnd" {
			want = cfg.capBounding
		}
		if err != nil || v != want {
			capsOK = false
		}
	}
	seccompObs, seccompOK := seccompProbe(ctx, status)
	return []selftest.Check{
		check("identity.user", fmt.Sprintf("uid %d, gid %d (real and effective)", cfg.uid, cfg.gid),
			fmt.Sprintf("uid %d euid %d gid %d egid %d", uid, euid, gid, egid),
			uid == cfg.uid && euid == cfg.uid && gid == cfg.gid && egid == cfg.gid,
			"processes in the workspace run as another user: root in the container is one step from the host"),
		check("identity.groups", "no supplementary groups", groupsObs, gerr == nil && len(extra) == 0,
			"the process holds supplementary groups, which may grant access to files it should not read"),
		check("identity.capabilities",
			fmt.Sprintf("bounding set %016x (CHOWN, DAC_OVERRIDE, SETGID, SETUID); effective, permitted, inheritable and ambient empty", cfg.capBounding),
			fmt.Sprintf("CapBnd %s CapEff %s CapPrm %s CapInh %s CapAmb %s", caps["CapBnd"], caps["CapEff"], caps["CapPrm"], caps["CapInh"], caps["CapAmb"]),
			capsOK, "the workspace holds capabilities beyond the configured four: a process that becomes root gets more power over the kernel"),
		check("identity.no_new_privs", "NoNewPrivs 1", "NoNewPrivs "+status["NoNewPrivs"], status["NoNewPrivs"] == "1",
			"setuid binaries or file capabilities could raise a process's privileges"),
		check("identity.seccomp", "seccomp filter mode 2; mount, unshare(CLONE_NEWUSER), ptrace, keyctl, bpf, adjtimex denied (the last two tell the workspace profile from Docker's default)",
			seccompObs, seccompOK, "the workspace's seccomp profile is not in force: kernel attack surface (namespaces, ptrace, keyrings, BPF) is reachable"),
	}
}

// procStatus parses /proc/<pid>/status into its fields.
func procStatus(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	m := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m, nil
}

// seccompProbe checks the filter mode and tries each syscall the profile
// must deny; it returns what it saw and whether all was as expected.
func seccompProbe(ctx context.Context, status map[string]string) (string, bool) {
	ok := status["Seccomp"] == "2"
	parts := []string{"Seccomp " + status["Seccomp"]}
	for _, p := range []struct {
		name string
		try  func(context.Context) error
	}{
		{"mount", tryMount},
		{"unshare(CLONE_NEWUSER)", tryUserNamespace},
		{"ptrace", tryPtrace},
		{"keyctl", func(context.Context) error {
			_, err := unix.KeyctlInt(unix.KEYCTL_GET_KEYRING_ID, unix.KEY_SPEC_SESSION_KEYRING, 0, 0, 0)
			return err
		}},
		{"bpf", func(context.Context) error {
			var attr [64]byte
			_, _, e := unix.Syscall(unix.SYS_BPF, 0 /* BPF_MAP_CREATE */, uintptr(unsafe.Pointer(&attr[0])), unsafe.Sizeof(attr))
			return errnoOrNil(e)
		}},
		{"adjtimex", func(context.Context) error {
			var tx unix.Timex // modes 0: read only
			_, err := unix.Adjtimex(&tx)
			return err
		}},
	} {
		err := p.try(ctx)
		denied := errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOSYS)
		switch {
		case denied:
			parts = append(parts, p.name+" denied")
		case err == nil:
			ok = false
			parts = append(parts, p.name+" ALLOWED")
		default:
			ok = false
			parts = append(parts, fmt.Sprintf("%s reached the kernel (%v)", p.name, err))
		}
	}
	return strings.Join(parts, "; "), ok
}

func errnoOrNil(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// tryMount mounts a tmpfs on a fresh directory (and unmounts it if that
// worked).
func tryMount(context.Context) error {
	dir, err := os.MkdirTemp("", "selftest-mount-")
	if err != nil {
		return fmt.Errorf("mkdir: %w", err)
	}
	defer os.Remove(dir)
	if err := unix.Mount("selftest", dir, "tmpfs", 0, "size=1m"); err != nil {
		return err
	}
	_ = unix.Unmount(dir, unix.MNT_DETACH)
	return nil
}

// tryUserNamespace starts a child in a new user namespace. (unshare in this
// process always fails with EINVAL: it has threads.)
func tryUserNamespace(ctx context.Context) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find myself: %w", err)
	}
	cmd := exec.CommandContext(ctx, self, helperTrue)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER}
	err = cmd.Run()
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return err
}

// tryPtrace attaches to a child of its own (the kernel allows tracing a
// descendant of the same user; only seccomp stands in the way).
func tryPtrace(context.Context) error {
	h, err := startHolder()
	if err != nil {
		return fmt.Errorf("start a tracee: %w", err)
	}
	defer h.kill()
	return unix.PtraceAttach(h.pid)
}
