package localstack_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/sivchari/kumo"

	"github.com/workspaced/workspaced/internal/testenv"
)

func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("locate test file")
	}
	return filepath.Dir(filepath.Dir(file))
}

var (
	emulatorOnce sync.Once
	emulatorURL  string
	cliURL       string
	emulatorErr  error
)

// emulator returns the URL of the process-wide in-process AWS emulator. Its
// EventBridge delivers SQS targets to localhost:$KUMO_PORT, which is
// forwarded to it. kumo has no reset: tests use unique names.
func emulator(t testing.TB) string {
	t.Helper()
	emulatorOnce.Do(func() {
		srv := kumo.NewServer()
		emulatorURL = srv.URL
		target, err := url.Parse(srv.URL)
		if err != nil {
			emulatorErr = err
			return
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("KUMO_PORT"))
		if err != nil {
			emulatorErr = err
			return
		}
		go func() { _ = http.Serve(l, httputil.NewSingleHostReverseProxy(target)) }()
		cl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			emulatorErr = err
			return
		}
		cliURL = "http://" + cl.Addr().String()
		go func() { _ = http.Serve(cl, newQueryShim(target)) }()
	})
	if emulatorErr != nil {
		t.Fatalf("start emulator forwarder on KUMO_PORT %s: %v", os.Getenv("KUMO_PORT"), emulatorErr)
	}
	return emulatorURL
}

func awsConfig() aws.Config {
	return aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	}
}

func uniqueName(t testing.TB) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "t" + hex.EncodeToString(b)
}

// cliEndpoint returns the endpoint for Debian's AWS CLI: the emulator
// behind the SQS Query-protocol shim (queryShim).
func cliEndpoint(t testing.TB) string {
	t.Helper()
	emulator(t)
	return cliURL
}

// deployment is one run of the init script.
type deployment struct {
	endpoint    string
	queuePrefix string
	namePrefix  string
	clusterARN  string
	output      string
}

// runInitScript runs localstack/init/ready.d/10-workspaced-resources.sh with
// Debian's AWS CLI against the emulator, with a unique queue and name prefix.
func runInitScript(t testing.TB) deployment {
	t.Helper()
	id := uniqueName(t)
	d := deployment{
		endpoint:    emulator(t),
		queuePrefix: id + "-",
		namePrefix:  "workspaced-" + id,
	}
	d.clusterARN = "arn:aws:ecs:us-east-1:000000000000:cluster/" + d.namePrefix
	d.output = runInitScript2(t, d)
	return d
}

var (
	sharedOnce sync.Once
	shared     deployment
	sharedOK   bool
)

// sharedDeployment runs the init script once per test process (each run
// costs ~40 s of AWS CLI start-ups) and returns it to every test.
func sharedDeployment(t testing.TB) deployment {
	t.Helper()
	sharedOnce.Do(func() {
		shared = runInitScript(t)
		sharedOK = true
	})
	if !sharedOK {
		testenv.Unavailable(t, "the shared init-script deployment", errors.New("it failed or was skipped in another test; see that test's output"))
	}
	return shared
}

// runInitScript2 runs the script for an existing deployment's prefixes and
// returns its output.
func runInitScript2(t testing.TB, d deployment) string {
	t.Helper()
	// Debian's awscli by default (a pyenv shim may shadow it on PATH);
	// WORKSPACED_AWS_CLI picks another, e.g. AWS CLI v2 on GitHub runners.
	awsBin := "/usr/bin/aws"
	if v := os.Getenv("WORKSPACED_AWS_CLI"); v != "" {
		awsBin = v
	}
	if _, err := os.Stat(awsBin); err != nil {
		testenv.Unavailable(t, "the AWS CLI "+awsBin+" (apt-get install -y awscli)", err)
	}
	testenv.LookPath(t, "python3")
	root := repoRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(root, "localstack", "init", "ready.d", "10-workspaced-resources.sh"))
	cmd.Env = append(os.Environ(),
		"AWS_ENDPOINT_URL="+cliEndpoint(t),
		"AWS_BIN="+awsBin,
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=test",
		"AWS_SECRET_ACCESS_KEY=test",
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"SQS_QUEUE_PREFIX="+d.queuePrefix,
		"WORKSPACED_NAME_PREFIX="+d.namePrefix,
		"WORKSPACED_CLUSTER_ARN="+d.clusterARN,
		"WORKSPACED_NAMES_FILE="+filepath.Join(root, "deploy", "names.json"),
		"WORKSPACED_PATTERN_TEMPLATE="+filepath.Join(root, "terraform", "modules", "messaging", "templates", "task-state-change-pattern.json.tftpl"),
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("init script: %v\n%s", err, out)
	}
	return string(out)
}

// names mirrors the parts of deploy/names.json these tests use.
type names struct {
	Queues struct {
		WorkspaceRequested string `json:"workspace_requested"`
		WorkspaceReleased  string `json:"workspace_released"`
		TaskEvents         string `json:"task_events"`
	} `json:"queues"`
	DeadLetterSuffix           string `json:"dead_letter_suffix"`
	StartedBy                  string `json:"started_by"`
	WorkspaceFilesBucketSuffix string `json:"workspace_files_bucket_suffix"`
}

func loadNames(t testing.TB) names {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "names.json"))
	if err != nil {
		t.Fatal(err)
	}
	var n names
	if err := json.Unmarshal(b, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// renderPattern renders the Terraform pattern template by plain substitution.
func renderPattern(t testing.TB, clusterARN, startedBy string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "terraform", "modules", "messaging", "templates", "task-state-change-pattern.json.tftpl"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.NewReplacer("${cluster_arn}", clusterARN, "${started_by_prefix}", startedBy).Replace(string(b))
}
