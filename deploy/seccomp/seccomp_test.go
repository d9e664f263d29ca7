package seccomp

import (
	"encoding/json"
	"slices"
	"testing"
)

// profileDoc is the subset of Docker's seccomp profile format the tests read.
type profileDoc struct {
	DefaultAction   string `json:"defaultAction"`
	DefaultErrnoRet *int   `json:"defaultErrnoRet"`
	ArchMap         []struct {
		Architecture     string   `json:"architecture"`
		SubArchitectures []string `json:"subArchitectures"`
	} `json:"archMap"`
	Syscalls []struct {
		Names    []string `json:"names"`
		Action   string   `json:"action"`
		ErrnoRet *int     `json:"errnoRet"`
		Args     []struct {
			Index uint   `json:"index"`
			Value uint64 `json:"value"`
			Op    string `json:"op"`
		} `json:"args"`
		Includes map[string]json.RawMessage `json:"includes"`
		Excludes map[string]json.RawMessage `json:"excludes"`
	} `json:"syscalls"`
}

func load(t *testing.T) profileDoc {
	t.Helper()
	var p profileDoc
	if err := json.Unmarshal(Profile(), &p); err != nil {
		t.Fatalf("parse profile: %v", err)
	}
	return p
}

// allowed reports whether some rule allows name, and whether every rule that
// allows it is unconditional (no argument filter).
func allowed(p profileDoc, name string) (found, unconditional bool) {
	unconditional = true
	for _, s := range p.Syscalls {
		if s.Action != "SCMP_ACT_ALLOW" || !slices.Contains(s.Names, name) {
			continue
		}
		found = true
		if len(s.Args) > 0 {
			unconditional = false
		}
	}
	return found, found && unconditional
}

func TestProfileDeniesByDefault(t *testing.T) {
	t.Parallel()
	p := load(t)
	if p.DefaultAction != "SCMP_ACT_ERRNO" || p.DefaultErrnoRet == nil || *p.DefaultErrnoRet != 1 {
		t.Fatalf("default action %q errno %v, want SCMP_ACT_ERRNO / EPERM", p.DefaultAction, p.DefaultErrnoRet)
	}
	for _, a := range p.ArchMap {
		if len(a.SubArchitectures) != 0 {
			t.Errorf("arch %s keeps sub-architectures %v: compat syscall ABIs must stay closed", a.Architecture, a.SubArchitectures)
		}
	}
}

func TestProfileHasNoCapabilityOrKernelConditionalRules(t *testing.T) {
	t.Parallel()
	for _, s := range load(t).Syscalls {
		for key := range s.Includes {
			if key != "arches" {
				t.Errorf("rule %v includes %q: the workspace profile must not depend on granted capabilities or kernel versions", s.Names, key)
			}
		}
		if len(s.Excludes) != 0 {
			t.Errorf("rule %v has excludes %v", s.Names, s.Excludes)
		}
	}
}

func TestProfileRemovesWhatAnAgentDoesNotNeed(t *testing.T) {
	t.Parallel()
	p := load(t)
	removed := []string{
		"ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd", "process_madvise",
		"mount", "umount2", "unshare", "setns", "pivot_root", "chroot",
		"bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key",
		"io_uring_setup", "io_uring_enter", "io_uring_register",
		"io_setup", "io_submit", "mq_open", "msgget",
		"open_by_handle_at", "name_to_handle_at", "modify_ldt", "vmsplice", "remap_file_pages",
		"socketcall", "init_module", "finit_module", "delete_module", "kexec_load", "reboot",
		"acct", "syslog", "settimeofday", "clock_settime", "adjtimex", "iopl", "ioperm",
		"fanotify_init", "fanotify_mark", "lookup_dcookie", "quotactl", "sethostname", "vhangup",
	}
	for _, name := range removed {
		if ok, _ := allowed(p, name); ok {
			t.Errorf("%s is allowed; the workspace profile removes it", name)
		}
	}
}

func TestProfileKeepsWhatAnAgentNeeds(t *testing.T) {
	t.Parallel()
	p := load(t)
	needed := []string{
		"read", "write", "openat", "execve", "mmap", "mprotect", "futex", "epoll_pwait",
		"arch_prctl", "rt_sigaction", "pipe2", "wait4", "prctl", "seccomp",
		"connect", "accept4", "bind", "listen", "setsockopt", "getrandom", "statx",
		"chown", "fchownat", "setuid", "setgid", "setgroups", "mknodat", "inotify_add_watch",
		"splice", "copy_file_range", "shmget", "semget", "landlock_create_ruleset",
	}
	for _, name := range needed {
		if ok, _ := allowed(p, name); !ok {
			t.Errorf("%s is not allowed; an agent needs it", name)
		}
	}
	// clone is allowed only without namespace flags; clone3 (whose flags
	// seccomp cannot inspect) fails with ENOSYS so libc falls back to clone.
	if _, unconditional := allowed(p, "clone"); unconditional {
		t.Error("clone is allowed unconditionally; it must be filtered on namespace flags")
	}
	var clone3 bool
	for _, s := range p.Syscalls {
		if slices.Contains(s.Names, "clone3") {
			clone3 = s.Action == "SCMP_ACT_ERRNO" && s.ErrnoRet != nil && *s.ErrnoRet == 38
		}
	}
	if !clone3 {
		t.Error("clone3 must fail with ENOSYS (38)")
	}
}

func TestProfileSocketFamilies(t *testing.T) {
	t.Parallel()
	const (
		afUnix, afInet, afInet6, afNetlink = 1, 2, 10, 16
	)
	permitted := map[uint64]bool{}
	for _, s := range load(t).Syscalls {
		if !slices.Contains(s.Names, "socket") || s.Action != "SCMP_ACT_ALLOW" {
			continue
		}
		if len(s.Args) != 1 || s.Args[0].Index != 0 {
			t.Fatalf("socket rule %+v does not filter on the family", s)
		}
		switch a := s.Args[0]; a.Op {
		case "SCMP_CMP_EQ":
			permitted[a.Value] = true
		case "SCMP_CMP_LT":
			for v := uint64(0); v < a.Value; v++ {
				permitted[v] = true
			}
		default:
			t.Fatalf("socket rule uses %s", a.Op)
		}
	}
	for f := uint64(0); f < 64; f++ {
		want := f == 0 || f == afUnix || f == afInet || f == afInet6 || f == afNetlink
		if permitted[f] != want {
			t.Errorf("socket family %d permitted=%v, want %v", f, permitted[f], want)
		}
	}
}
