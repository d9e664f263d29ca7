package terraform_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

func packerDir(t testing.TB) string { return filepath.Join(terraformDir(t), "packer") }

// TestPackerUsesTheRepositorySeccompProfile: the AMI's default seccomp
// profile is deploy/seccomp/workspace-seccomp.json itself, referenced by
// relative path, and no copy of it lives under terraform/.
func TestPackerUsesTheRepositorySeccompProfile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(packerDir(t), "workspaced-ecs.pkr.hcl")
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, diags := hclsyntax.ParseConfig(src, path, hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	var sources []string
	for _, b := range f.Body.(*hclsyntax.Body).Blocks {
		if b.Type != "build" {
			continue
		}
		for _, p := range b.Body.Blocks {
			if p.Type == "provisioner" && len(p.Labels) == 1 && p.Labels[0] == "file" {
				a := p.Body.Attributes["source"]
				sources = append(sources, strings.Trim(string(a.Expr.Range().SliceBytes(src)), `"`))
			}
		}
	}
	const want = "${path.root}/../../deploy/seccomp/workspace-seccomp.json"
	found := false
	for _, s := range sources {
		if s == want {
			found = true
		}
		local := filepath.Join(packerDir(t), strings.TrimPrefix(s, "${path.root}/"))
		if _, err := os.Stat(local); err != nil {
			t.Errorf("packer file provisioner source %s: %v", s, err)
		}
	}
	if !found {
		t.Errorf("no file provisioner copies %s (sources: %v)", want, sources)
	}
	profile, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "seccomp", "workspace-seccomp.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(profile) {
		t.Fatal("deploy/seccomp/workspace-seccomp.json is not JSON")
	}
	err = filepath.WalkDir(terraformDir(t), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".json") {
			return err
		}
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), `"defaultAction"`) {
			t.Errorf("%s looks like a seccomp profile: use deploy/seccomp/workspace-seccomp.json, not a copy", rel(t, p))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestAMIConfiguration checks daemon.json and ecs.config carry docs/design-basis.md §6.2.
func TestAMIConfiguration(t *testing.T) {
	t.Parallel()
	var daemon map[string]any
	readJSON(t, filepath.Join(packerDir(t), "files", "daemon.json"), &daemon)
	const profile = "/etc/docker/seccomp/workspace-seccomp.json"
	if daemon["seccomp-profile"] != profile {
		t.Errorf("daemon.json seccomp-profile %v, want %s", daemon["seccomp-profile"], profile)
	}
	setup, err := os.ReadFile(filepath.Join(packerDir(t), "scripts", "setup.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(setup), profile) {
		t.Errorf("setup.sh does not install the profile at %s", profile)
	}
	cfg, err := os.ReadFile(filepath.Join(packerDir(t), "files", "ecs.config"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"ECS_AWSVPC_BLOCK_IMDS=true",
		"ECS_IMAGE_PULL_BEHAVIOR=prefer-cached",
		"ECS_WARM_POOLS_CHECK=true",
		"ECS_DISABLE_PRIVILEGED=true",
	} {
		if !strings.Contains(string(cfg), line+"\n") {
			t.Errorf("ecs.config lacks %s", line)
		}
	}
	// ENI trunking is the account setting awsvpcTrunking (ecs module), not
	// an agent variable: a line for it would only mislead.
	if strings.Contains(string(cfg), "TRUNKING") {
		t.Error("ecs.config sets trunking, which is no ECS agent setting (it is the account setting awsvpcTrunking)")
	}
	if strings.Contains(string(cfg), "ECS_CLUSTER=") {
		t.Error("ecs.config must not bake in a cluster: the launch template's user data sets it")
	}
	unit, err := os.ReadFile(filepath.Join(packerDir(t), "files", "imds-block.service"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(unit), "169.254.169.254/32 -j DROP") {
		t.Error("imds-block.service does not drop container traffic to IMDS")
	}
}
