// Package seccomp ships the seccomp profile every workspace container runs
// under. The same file, workspace-seccomp.json, is installed on the ECS AMI
// as the Docker daemon's default profile ("seccomp-profile" in daemon.json),
// so the Docker runtime and ECS enforce one profile. docs/seccomp.md says
// what was removed from Docker's default profile and why.
package seccomp

import (
	"bytes"
	_ "embed"
)

//go:embed workspace-seccomp.json
var profile []byte

// Profile returns the profile's JSON (Docker's seccomp profile format). The
// caller owns the returned slice.
func Profile() []byte { return bytes.Clone(profile) }
