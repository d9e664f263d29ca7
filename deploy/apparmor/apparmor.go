// Package apparmor holds the AppArmor profile of workspace containers
// (the file workspace-container beside this one): the Docker runtime names
// it when WORKSPACE_APPARMOR_PROFILE is set, the ECS task definition names
// it in dockerSecurityOptions, and the Packer AMI loads it at boot.
// workspace-selftest reports the label a workspace runs under.
package apparmor

import _ "embed" // the profile is embedded

// ProfileName is the profile's name, as the runtimes reference it.
const ProfileName = "workspace-container"

//go:embed workspace-container
var profile []byte

// Profile returns the profile text (a copy).
func Profile() []byte { return append([]byte(nil), profile...) }
