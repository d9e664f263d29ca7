package localstack_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// lifecycleRule is one S3 lifecycle rule, as both Terraform and the init
// script must define it.
type lifecycleRule struct {
	ID                        string
	Status                    string
	ExpirationDays            int
	ExpiredObjectDeleteMarker bool
	NoncurrentDays            int
	AbortIncompleteDays       int
}

// terraformLifecycle reads the rules of
// aws_s3_bucket_lifecycle_configuration.workspace_files in the messaging
// module, with var.* resolved to the variables' defaults.
func terraformLifecycle(t testing.TB) []lifecycleRule {
	t.Helper()
	dir := filepath.Join(repoRoot(t), "terraform", "modules", "messaging")
	vars := map[string]hclsyntax.Expression{}
	var rules []*hclsyntax.Block
	for _, name := range []string{"variables.tf", "s3.tf"} {
		path := filepath.Join(dir, name)
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		f, diags := hclsyntax.ParseConfig(src, path, hcl.InitialPos)
		if diags.HasErrors() {
			t.Fatal(diags.Error())
		}
		for _, b := range f.Body.(*hclsyntax.Body).Blocks {
			switch {
			case b.Type == "variable":
				if a, ok := b.Body.Attributes["default"]; ok {
					vars[b.Labels[0]] = a.Expr
				}
			case b.Type == "resource" && b.Labels[0] == "aws_s3_bucket_lifecycle_configuration" && b.Labels[1] == "workspace_files":
				for _, r := range b.Body.Blocks {
					if r.Type == "rule" {
						rules = append(rules, r)
					}
				}
			}
		}
	}
	// eval resolves var.NAME to NAME's default, then evaluates a literal.
	eval := func(e hclsyntax.Expression) hclsyntax.Expression {
		if st, ok := e.(*hclsyntax.ScopeTraversalExpr); ok && st.Traversal.RootName() == "var" && len(st.Traversal) == 2 {
			if a, ok := st.Traversal[1].(hcl.TraverseAttr); ok {
				if d, ok := vars[a.Name]; ok {
					return d
				}
			}
		}
		return e
	}
	num := func(body *hclsyntax.Body, block, attr string) int {
		for _, b := range body.Blocks {
			if b.Type == block {
				if a, ok := b.Body.Attributes[attr]; ok {
					v, diags := eval(a.Expr).Value(nil)
					if diags.HasErrors() {
						t.Fatalf("%s.%s: %s", block, attr, diags.Error())
					}
					if v.Type().FriendlyName() == "bool" {
						if v.True() {
							return 1
						}
						return 0
					}
					i, _ := v.AsBigFloat().Int64()
					return int(i)
				}
			}
		}
		return 0
	}
	str := func(body *hclsyntax.Body, attr string) string {
		v, diags := eval(body.Attributes[attr].Expr).Value(nil)
		if diags.HasErrors() {
			t.Fatalf("%s: %s", attr, diags.Error())
		}
		return v.AsString()
	}
	var out []lifecycleRule
	for _, r := range rules {
		out = append(out, lifecycleRule{
			ID:                        str(r.Body, "id"),
			Status:                    str(r.Body, "status"),
			ExpirationDays:            num(r.Body, "expiration", "days"),
			ExpiredObjectDeleteMarker: num(r.Body, "expiration", "expired_object_delete_marker") == 1,
			NoncurrentDays:            num(r.Body, "noncurrent_version_expiration", "noncurrent_days"),
			AbortIncompleteDays:       num(r.Body, "abort_incomplete_multipart_upload", "days_after_initiation"),
		})
	}
	if len(out) == 0 {
		t.Fatal("terraform/modules/messaging has no lifecycle rule for the workspace-files bucket")
	}
	return out
}

// TestInitScriptBucketLifecycleMatchesTerraform: the bucket the init script
// creates expires archives, noncurrent versions, incomplete uploads and
// expired delete markers exactly as Terraform's bucket does.
func TestInitScriptBucketLifecycleMatchesTerraform(t *testing.T) {
	t.Parallel()
	want := terraformLifecycle(t)
	n := loadNames(t)
	d := sharedDeployment(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := s3.NewFromConfig(awsConfig(), func(o *s3.Options) {
		o.BaseEndpoint = aws.String(d.endpoint)
		o.UsePathStyle = true
	})
	bucket := d.namePrefix + "-000000000000-" + n.WorkspaceFilesBucketSuffix
	out, err := s.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatalf("lifecycle of %s: %v", bucket, err)
	}
	var got []lifecycleRule
	for _, r := range out.Rules {
		lr := lifecycleRule{ID: aws.ToString(r.ID), Status: string(r.Status)}
		if r.Expiration != nil {
			lr.ExpirationDays = int(aws.ToInt32(r.Expiration.Days))
			lr.ExpiredObjectDeleteMarker = aws.ToBool(r.Expiration.ExpiredObjectDeleteMarker)
		}
		if r.NoncurrentVersionExpiration != nil {
			lr.NoncurrentDays = int(aws.ToInt32(r.NoncurrentVersionExpiration.NoncurrentDays))
		}
		if r.AbortIncompleteMultipartUpload != nil {
			lr.AbortIncompleteDays = int(aws.ToInt32(r.AbortIncompleteMultipartUpload.DaysAfterInitiation))
		}
		got = append(got, lr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("init script's lifecycle rules\n %+v\nTerraform's\n %+v", got, want)
	}
}

// TestInitScriptCreatesBucketInItsRegion: outside us-east-1, CreateBucket
// needs a LocationConstraint naming the region (S3 answers
// IllegalLocationConstraintException otherwise, and docker-compose.yml runs
// LocalStack in ap-northeast-1); in us-east-1 it must have none. The
// in-process emulator ignores the constraint, so this runs the script with
// a stand-in AWS CLI that records its arguments (every call succeeds, the
// bucket does not exist yet).
func TestInitScriptCreatesBucketInItsRegion(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	for _, tc := range []struct {
		region string
		want   string // expected create-bucket arguments after --bucket NAME
	}{
		{"ap-northeast-1", "--create-bucket-configuration LocationConstraint=ap-northeast-1"},
		{"eu-west-1", "--create-bucket-configuration LocationConstraint=eu-west-1"},
		{"us-east-1", ""},
	} {
		t.Run(tc.region, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			log := filepath.Join(dir, "calls")
			cli := filepath.Join(dir, "aws")
			// Prints what the script reads back (a queue URL, a rule ARN);
			// head-bucket fails so the bucket gets created.
			script := `#!/bin/sh
echo "$*" >>"` + log + `"
case "$*" in
  *"s3api head-bucket"*) exit 254 ;;
  *"sqs create-queue"*) echo "http://127.0.0.1/000000000000/q" ;;
  *"events put-rule"*) echo "arn:aws:events:` + tc.region + `:000000000000:rule/r" ;;
esac
`
			if err := os.WriteFile(cli, []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(filepath.Join(root, "localstack", "init", "ready.d", "10-workspaced-resources.sh"))
			cmd.Env = append(os.Environ(),
				"AWS_ENDPOINT_URL=http://127.0.0.1:1",
				"AWS_BIN="+cli,
				"AWS_DEFAULT_REGION="+tc.region,
				"WORKSPACED_NAME_PREFIX=workspaced-test",
				"WORKSPACED_NAMES_FILE="+filepath.Join(root, "deploy", "names.json"),
				"WORKSPACED_PATTERN_TEMPLATE="+filepath.Join(root, "terraform", "modules", "messaging", "templates", "task-state-change-pattern.json.tftpl"),
			)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("init script: %v\n%s", err, out)
			}
			calls, err := os.ReadFile(log)
			if err != nil {
				t.Fatal(err)
			}
			var create string
			for _, line := range strings.Split(string(calls), "\n") {
				if _, rest, ok := strings.Cut(line, "s3api create-bucket "); ok {
					create = rest
				}
			}
			if create == "" {
				t.Fatalf("no create-bucket call:\n%s", calls)
			}
			_, args, _ := strings.Cut(create, "--bucket workspaced-test-000000000000-workspace-files")
			if got := strings.TrimSpace(args); got != tc.want {
				t.Errorf("create-bucket in %s with %q, want %q", tc.region, got, tc.want)
			}
			// Every call goes to the region's endpoint: the lifecycle
			// JSON, too, is what TestInitScriptBucketLifecycleMatchesTerraform
			// checks on the emulator.
			if !strings.Contains(string(calls), "put-bucket-lifecycle-configuration") {
				t.Errorf("no lifecycle configuration:\n%s", calls)
			}
		})
	}
}
