package ecsdouble

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Paths of the Terraform templates the double and the tests read, relative to
// the repository root.
const (
	ContainersTemplate        = "terraform/modules/services/templates/workspace-containers.json.tftpl"
	ContainersTemplateExample = "terraform/modules/services/templates/workspace-containers.example.json"
	TaskEventPatternTemplate  = "terraform/modules/messaging/templates/task-state-change-pattern.json.tftpl"
)

// ContainerDefinition is the part of an ECS container definition the double
// runs. JSON names are the task definition's.
type ContainerDefinition struct {
	Name                   string            `json:"name"`
	Image                  string            `json:"image"`
	Essential              *bool             `json:"essential"`
	User                   string            `json:"user"`
	ReadonlyRootFilesystem bool              `json:"readonlyRootFilesystem"`
	Privileged             bool              `json:"privileged"`
	PortMappings           []PortMapping     `json:"portMappings"`
	DependsOn              []Dependency      `json:"dependsOn"`
	LinuxParameters        *LinuxParameters  `json:"linuxParameters"`
	DockerSecurityOptions  []string          `json:"dockerSecurityOptions"`
	Ulimits                []Ulimit          `json:"ulimits"`
	Environment            []KeyValue        `json:"environment"`
	Secrets                []Secret          `json:"secrets"`
	Command                []string          `json:"command"`
	EntryPoint             []string          `json:"entryPoint"`
	Cpu                    int64             `json:"cpu"`
	Memory                 int64             `json:"memory"`
	MemoryReservation      int64             `json:"memoryReservation"`
	StopTimeout            int               `json:"stopTimeout"`
	HealthCheck            *HealthCheck      `json:"healthCheck"`
	LogConfiguration       json.RawMessage   `json:"logConfiguration"`
	DockerLabels           map[string]string `json:"dockerLabels"`
}

// IsEssential reports the definition's essential flag (default true).
func (c ContainerDefinition) IsEssential() bool { return c.Essential == nil || *c.Essential }

// Env returns the value of the environment variable name and whether the
// definition sets it.
func (c ContainerDefinition) Env(name string) (string, bool) {
	for _, kv := range c.Environment {
		if kv.Name == name {
			return kv.Value, true
		}
	}
	return "", false
}

// KeyValue is an environment entry.
type KeyValue struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Secret is a secret reference (SSM / Secrets Manager ARN).
type Secret struct {
	Name      string `json:"name"`
	ValueFrom string `json:"valueFrom"`
}

// PortMapping is a container port (awsvpc: reachable on the task's IP).
type PortMapping struct {
	ContainerPort int    `json:"containerPort"`
	Protocol      string `json:"protocol"`
	Name          string `json:"name"`
}

// Dependency is a dependsOn entry.
type Dependency struct {
	ContainerName string `json:"containerName"`
	Condition     string `json:"condition"`
}

// LinuxParameters holds capabilities, init and tmpfs mounts.
type LinuxParameters struct {
	Capabilities *struct {
		Add  []string `json:"add"`
		Drop []string `json:"drop"`
	} `json:"capabilities"`
	InitProcessEnabled *bool   `json:"initProcessEnabled"`
	SharedMemorySize   *int64  `json:"sharedMemorySize"` // MiB: /dev/shm
	Tmpfs              []Tmpfs `json:"tmpfs"`
}

// Tmpfs is a tmpfs mount; Size is in MiB.
type Tmpfs struct {
	ContainerPath string   `json:"containerPath"`
	Size          int64    `json:"size"`
	MountOptions  []string `json:"mountOptions"`
}

// Ulimit is a resource limit.
type Ulimit struct {
	Name      string `json:"name"`
	SoftLimit int64  `json:"softLimit"`
	HardLimit int64  `json:"hardLimit"`
}

// HealthCheck is a container health check; durations are seconds.
type HealthCheck struct {
	Command     []string `json:"command"`
	Interval    int      `json:"interval"`
	Timeout     int      `json:"timeout"`
	Retries     int      `json:"retries"`
	StartPeriod int      `json:"startPeriod"`
}

// RepoRoot returns the repository root (the directory holding go.mod),
// searching upwards from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// RenderTemplateFile reads the Terraform template at path (relative paths
// are taken from the repository root) and renders it with vars.
func RenderTemplateFile(path string, vars map[string]string) ([]byte, error) {
	if !filepath.IsAbs(path) {
		root, err := RepoRoot()
		if err != nil {
			return nil, err
		}
		path = filepath.Join(root, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out, err := RenderTemplate(b, vars)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", filepath.Base(path), err)
	}
	return out, nil
}

var interpRE = regexp.MustCompile(`^\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// RenderTemplate renders a Terraform templatefile that uses nothing but
// plain ${name} interpolations (and the $${ / %%{ escapes). Any other
// template syntax — expressions, function calls, %{ directives — and any
// name missing from vars is an error: the templates are kept simple enough
// for Go tests to render them exactly as Terraform would.
func RenderTemplate(tmpl []byte, vars map[string]string) ([]byte, error) {
	var out bytes.Buffer
	s := string(tmpl)
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "$${"):
			out.WriteString("${")
			i += 3
		case strings.HasPrefix(s[i:], "%%{"):
			out.WriteString("%{")
			i += 3
		case strings.HasPrefix(s[i:], "%{"):
			return nil, fmt.Errorf("offset %d: template directive %%{...} is not supported", i)
		case strings.HasPrefix(s[i:], "${"):
			m := interpRE.FindStringSubmatch(s[i:])
			if m == nil {
				end := min(len(s), i+40)
				return nil, fmt.Errorf("offset %d: only ${name} interpolations are supported, found %q", i, s[i:end])
			}
			v, ok := vars[m[1]]
			if !ok {
				return nil, fmt.Errorf("offset %d: no value for ${%s}", i, m[1])
			}
			out.WriteString(v)
			i += len(m[0])
		default:
			out.WriteByte(s[i])
			i++
		}
	}
	return out.Bytes(), nil
}

// TemplateVars returns the names interpolated by a template, in order of
// first use.
func TemplateVars(tmpl []byte) []string {
	var names []string
	seen := map[string]bool{}
	s := string(tmpl)
	for i := 0; i < len(s); i++ {
		if strings.HasPrefix(s[i:], "$${") {
			i += 2
			continue
		}
		if m := interpRE.FindStringSubmatch(s[i:]); m != nil && !seen[m[1]] {
			seen[m[1]] = true
			names = append(names, m[1])
		}
	}
	return names
}

// ExampleVars reads the example variable values committed next to the
// containers template (keys starting with "_" are comments).
func ExampleVars() (map[string]string, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(root, ContainersTemplateExample))
	if err != nil {
		return nil, err
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("parse %s: %w", ContainersTemplateExample, err)
	}
	vars := map[string]string{}
	for k, v := range raw {
		if strings.HasPrefix(k, "_") {
			continue
		}
		vars[k] = fmt.Sprint(v)
	}
	return vars, nil
}

// ParseContainerDefinitions decodes a rendered containerDefinitions array.
// Unknown members are allowed (the double runs a subset); names must be
// unique and non-empty.
func ParseContainerDefinitions(b []byte) ([]ContainerDefinition, error) {
	var defs []ContainerDefinition
	if err := json.Unmarshal(b, &defs); err != nil {
		return nil, fmt.Errorf("parse container definitions: %w", err)
	}
	if len(defs) == 0 {
		return nil, errors.New("parse container definitions: empty")
	}
	seen := map[string]bool{}
	for _, d := range defs {
		if d.Name == "" || seen[d.Name] {
			return nil, fmt.Errorf("parse container definitions: missing or duplicate name %q", d.Name)
		}
		seen[d.Name] = true
	}
	return defs, nil
}

// LoadContainerDefinitions renders the repository's containers template with
// the example values, overridden by vars, and parses it.
func LoadContainerDefinitions(vars map[string]string) ([]ContainerDefinition, error) {
	all, err := ExampleVars()
	if err != nil {
		return nil, err
	}
	for k, v := range vars {
		all[k] = v
	}
	b, err := RenderTemplateFile(ContainersTemplate, all)
	if err != nil {
		return nil, err
	}
	return ParseContainerDefinitions(b)
}
