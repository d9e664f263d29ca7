package apparmor_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/workspaced/workspaced/deploy/apparmor"
	"github.com/workspaced/workspaced/internal/testenv"
)

// TestProfileParses compiles the profile with apparmor_parser without
// loading it (this machine's kernel has no AppArmor), and checks that the
// parser does reject a broken copy: a parser that accepts anything proves
// nothing.
func TestProfileParses(t *testing.T) {
	parser := testenv.LookPath(t, "apparmor_parser")
	broken := strings.Replace(string(apparmor.Profile()), "deny mount,", "deny mount", 1)
	for _, tt := range []struct {
		name    string
		profile string
		ok      bool
	}{
		{"shipped profile", string(apparmor.Profile()), true},
		{"missing comma", broken, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), apparmor.ProfileName)
			if err := os.WriteFile(file, []byte(tt.profile), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(parser, "--skip-kernel-load", "--skip-cache", "-Q", file).CombinedOutput()
			if (err == nil) != tt.ok {
				t.Errorf("apparmor_parser: err %v, want ok=%v:\n%s", err, tt.ok, out)
			}
		})
	}
}

// TestProfileIsNamedAndReferenced: the profile declares ProfileName, the
// ECS task definition's agent container names it, and the AMI installs
// this very file.
func TestProfileIsNamedAndReferenced(t *testing.T) {
	if !regexp.MustCompile(`(?m)^profile ` + apparmor.ProfileName + ` `).Match(apparmor.Profile()) {
		t.Errorf("the profile does not declare %q", apparmor.ProfileName)
	}
	for file, want := range map[string]string{
		"terraform/modules/services/templates/workspace-containers.json.tftpl": `"apparmor:` + apparmor.ProfileName + `"`,
		"terraform/packer/workspaced-ecs.pkr.hcl":                              "deploy/apparmor/" + apparmor.ProfileName,
		"terraform/packer/scripts/setup.sh":                                    "apparmor_parser -r -W /etc/apparmor.d/" + apparmor.ProfileName,
		"terraform/packer/files/ecs.config":                                    "ECS_APPARMOR_CAPABLE=true",
	} {
		b, err := os.ReadFile(filepath.Join("..", "..", file))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), want) {
			t.Errorf("%s does not contain %s", file, want)
		}
	}
}
