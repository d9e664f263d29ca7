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

// hardeningChecks: the AppArmor profile. Required on ECS (docs/design-basis.md §9.1):
// there a kernel without AppArmor fails, unless -apparmor is empty.
// Optional on Docker (docs/contracts.md §6): any confinement passes.
func hardeningChecks(_ context.Context, cfg config, env runtimeEnv) []selftest.Check {
	const id = "hardening.apparmor"
	label, err := apparmorLabel()
	required := env.runtime == selftest.RuntimeECS && cfg.apparmor != ""
	if errors.Is(err, errNoAppArmor) {
		if required {
			return []selftest.Check{check(id, "AppArmor profile "+cfg.apparmor+" (enforce), required on ECS", label, false,
				"the instance's kernel has no AppArmor: the task definition's profile is silently not applied")}
		}
		return []selftest.Check{notApplicable(id, "AppArmor confinement (optional here)", "the kernel has no AppArmor, so no profile can confine the workspace")}
	}
	confined := err == nil && label != "" && !strings.HasPrefix(label, "unconfined")
	if required {
		return []selftest.Check{check(id, "AppArmor profile "+cfg.apparmor+" (enforce)", label,
			err == nil && label == cfg.apparmor+" (enforce)", "the workspace runs without its AppArmor profile: one layer of defence (mount, ptrace, /proc and /sys writes) is missing")}
	}
	return []selftest.Check{check(id, "confined by an AppArmor profile ("+cfg.apparmor+" or the engine's docker-default)", label,
		confined, "the workspace runs unconfined by AppArmor")}
}
