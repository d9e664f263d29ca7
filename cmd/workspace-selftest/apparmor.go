package main

import (
	"context"
	"errors"
	"os"
	"strings"

	"github.com/workspaced/workspaced/selftest"
)

// errNoAppArmor means the kernel has no AppArmor: nothing can confine the
// workspace with it.
var errNoAppArmor = errors.New("the kernel has no AppArmor")

// apparmorLabel returns the AppArmor label this process runs under
// ("workspace-container (enforce)", "unconfined"), or why there is none.
func apparmorLabel() (string, error) {
	if b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled"); err != nil || strings.TrimSpace(string(b)) != "Y" {
		return "none: " + errNoAppArmor.Error(), errNoAppArmor
	}
	for _, p := range []string{"/proc/self/attr/apparmor/current", "/proc/self/attr/current"} {
		if b, err := os.ReadFile(p); err == nil {
			return strings.TrimSpace(strings.TrimRight(string(b), "\x00")), nil
		}
	}
	return "unreadable", errors.New("no readable AppArmor attribute")
}

// hardeningChecks: the AppArmor profile. Required on ECS (seed §9.1),
// optional on Docker (DESIGN §6): there any confinement passes.
func hardeningChecks(_ context.Context, cfg config, env runtimeEnv) []selftest.Check {
	label, err := apparmorLabel()
	if errors.Is(err, errNoAppArmor) {
		return []selftest.Check{notApplicable("hardening.apparmor", "AppArmor profile "+cfg.apparmor, "the kernel has no AppArmor, so no profile can confine the workspace")}
	}
	confined := err == nil && label != "" && !strings.HasPrefix(label, "unconfined")
	if env.runtime == selftest.RuntimeECS {
		return []selftest.Check{check("hardening.apparmor", "AppArmor profile "+cfg.apparmor+" (enforce)", label,
			err == nil && label == cfg.apparmor+" (enforce)", "the workspace runs without its AppArmor profile: one layer of defence (mount, ptrace, /proc and /sys writes) is missing")}
	}
	return []selftest.Check{check("hardening.apparmor", "confined by an AppArmor profile ("+cfg.apparmor+" or the engine's docker-default)", label,
		confined, "the workspace runs unconfined by AppArmor")}
}
