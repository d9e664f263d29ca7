package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/workspaced/workspaced/selftest"
)

// secretName matches environment variable names that hold credentials.
// Names the workspace legitimately has (CLAUDE_CODE_SKIP_BEDROCK_AUTH,
// ECS_CONTAINER_METADATA_URI*) do not match.
var secretName = regexp.MustCompile(`(?i)^(AWS_(ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN|SECURITY_TOKEN|BEARER_TOKEN_BEDROCK|CONTAINER_CREDENTIALS_(RELATIVE|FULL)_URI|CONTAINER_AUTHORIZATION_TOKEN(_FILE)?|WEB_IDENTITY_TOKEN_FILE)|ANTHROPIC_(API_KEY|AUTH_TOKEN)|CLAUDE_CODE_OAUTH_TOKEN|PROXY_ADMIN_(TOKEN|KEY)|MCP_.*(TOKEN|SECRET|KEY|PASSWORD).*|.*(_API_KEY|_SECRET|_SECRET_KEY|_PASSWORD|_PRIVATE_KEY|_ACCESS_TOKEN|_AUTH_TOKEN))$`)

// secretValue matches values (and file contents) that look like keys.
var secretValue = regexp.MustCompile(`(A3T[A-Z0-9]|AKIA|ASIA)[A-Z0-9]{16}|sk-ant-[A-Za-z0-9_-]{8,}|(?i)aws_secret_access_key\s*=|-----BEGIN ([A-Z]+ )?PRIVATE KEY-----|gh[pousr]_[A-Za-z0-9]{30,}|xox[abp]-[A-Za-z0-9-]{10,}`)

// credentialChecks: no secret in the environment, in other processes'
// environment, in files, or from the ECS credential endpoint.
func credentialChecks(ctx context.Context, cfg config, env runtimeEnv) []selftest.Check {
	own := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		own[k] = v
	}
	ownHits := secretsIn(own)
	procHits := processSecrets()
	fileHits, scanned := fileSecrets(cfg)
	return []selftest.Check{
		check("credentials.environment", "no credential-like variable in the run's environment", hitsObs(ownHits), len(ownHits) == 0,
			"a credential is handed to every command the agent runs"),
		check("credentials.process_environ", "no credential-like variable in the environment of any process the workspace user can read (/proc/*/environ)", hitsObs(procHits), len(procHits) == 0,
			"a credential sits in a process's environment that any command in the workspace can read"),
		check("credentials.files", "no credential file or key-looking content under $HOME, /workspace, /tmp, /var/tmp, /run, /var/run/ws", fmt.Sprintf("%d files examined; %s", scanned, hitsObs(fileHits)), len(fileHits) == 0,
			"a credential is stored where commands in the workspace can read it"),
		taskCredentialEndpoint(ctx, cfg, env),
	}
}

func hitsObs(h []string) string {
	if len(h) == 0 {
		return "none found"
	}
	return "found: " + strings.Join(h, ", ")
}

// secretsIn returns the credential-like names in env (never the values).
func secretsIn(env map[string]string) []string {
	var hits []string
	for k, v := range env {
		if (secretName.MatchString(k) && v != "") || secretValue.MatchString(v) {
			hits = append(hits, k)
		}
	}
	sort.Strings(hits)
	return hits
}

// processSecrets reads every /proc/<pid>/environ it may.
func processSecrets() []string {
	var hits []string
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		if d.Name()[0] < '0' || d.Name()[0] > '9' {
			continue
		}
		m, err := readEnviron(filepath.Join("/proc", d.Name(), "environ"))
		if err != nil {
			continue
		}
		for _, k := range secretsIn(m) {
			hits = append(hits, fmt.Sprintf("%s in /proc/%s/environ", k, d.Name()))
		}
	}
	return hits
}

// fileSecrets scans the writable trees for credential files and
// key-looking content (the first 64 KiB of each file).
func fileSecrets(cfg config) ([]string, int) {
	home := os.Getenv("HOME")
	if home == "" {
		home = "/home/appuser"
	}
	var hits []string
	scanned := 0
	seen := map[string]bool{}
	for _, root := range []string{home, "/workspace", "/tmp", "/var/tmp", "/run", socketDir} {
		n := 0
		_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || seen[path] {
				return nil
			}
			seen[path] = true
			if !d.Type().IsRegular() {
				return nil
			}
			if n++; n > cfg.scanBudget {
				return fs.SkipAll
			}
			scanned++
			if isSecretFile(path) {
				hits = append(hits, path)
			}
			return nil
		})
	}
	return hits, scanned
}

func isSecretFile(path string) bool {
	base := filepath.Base(path)
	for _, s := range []string{"credentials", ".netrc", ".git-credentials", ".pgpass", ".pypirc"} {
		if base == s && (s != "credentials" || strings.Contains(path, "/.aws/")) {
			return true
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, 64<<10))
	return secretValue.Match(b) || bytes.Contains(b, []byte(`"_authToken"`))
}

// taskCredentialEndpoint asks the ECS agent's credential endpoint for
// task-role credentials, at the relative URI the ECS agent would have put
// in the environment if the task had a role.
func taskCredentialEndpoint(ctx context.Context, cfg config, env runtimeEnv) selftest.Check {
	rel := env.agentEnv["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"]
	if rel == "" {
		rel = os.Getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
	}
	url := "http://169.254.170.2" + rel
	if rel == "" {
		url = "http://169.254.170.2/v2/credentials/"
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.dialTimeout)
	defer cancel()
	obs, got := "", false
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	tr := &http.Transport{Proxy: nil, DialContext: (&net.Dialer{Timeout: cfg.dialTimeout}).DialContext}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: cfg.dialTimeout + time.Second}).Do(req)
	if err != nil {
		obs = "unreachable: " + shortErr(err)
	} else {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		got = resp.StatusCode == http.StatusOK && bytes.Contains(b, []byte("AccessKeyId"))
		obs = "answered " + resp.Status
		if got {
			obs += " with credentials"
		}
	}
	if rel != "" {
		obs = "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is set; " + obs
	}
	return check("credentials.task_role", "no task-role credentials from 169.254.170.2 (the workspace task has no role)", obs, !got,
		"AWS credentials of a task role are one HTTP request away from any command in the workspace")
}

// shortErr trims an error to its last, most specific part.
func shortErr(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && i+2 < len(s) {
		return s[i+2:]
	}
	return s
}
