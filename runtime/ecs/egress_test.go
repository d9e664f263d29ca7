package ecs_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/workspaced/workspaced/internal/ecsdouble"
	"github.com/workspaced/workspaced/internal/testenv"
	"github.com/workspaced/workspaced/runtime/ecs"
	"github.com/workspaced/workspaced/workspace"
)

// egressTemplate is the egress tier's container definition in Terraform
// (docs/decisions.md D21).
const egressTemplate = "terraform/modules/services/templates/egress-containers.json.tftpl"

// The workspace security group as the double models it (D22): the task's
// namespace is on an internal network that holds nothing but the egress
// tier (the Terraform egress container definition, reached as its NLB is,
// by name) and the task itself. A "public" host sits on another internal
// network, the stand-in internet, which only the tier is on. From inside
// the task, through the agent's command path:
//   - a direct connection to the public host fails;
//   - CONNECT to an allowlisted name through the sidecar works (sidecar →
//     tier → host);
//   - a name not on the allowlist is refused;
//   - the task metadata endpoint (169.254.170.2) is unreachable directly
//     and refused by the proxy, and nothing in the agent's environment
//     points at credentials.
func TestTaskEgressOnlyThroughTheProxy(t *testing.T) {
	t.Parallel()
	cli := testenv.Docker(t)
	agentImage := envOr("WORKSPACE_TEST_IMAGE", ecsdouble.AgentTestImage)
	proxyImage := envOr("PROXY_TEST_IMAGE", ecsdouble.ProxyTestImage)
	testenv.Image(t, cli, agentImage)
	testenv.Image(t, cli, proxyImage)
	ctx := testCtx(t)

	// Networks first: their clean-up runs last, after every container.
	wsNet := internalNetwork(t, cli)    // the workspace security group
	internet := internalNetwork(t, cli) // the stand-in internet (no real route out either)

	// The one allowlist: the value of the SSM parameter both task
	// definitions name, given to both through the same Secrets entry.
	vars, err := ecsdouble.ExampleVars()
	if err != nil {
		t.Fatal(err)
	}
	allowlistARN := vars["proxy_domain_whitelist_arn"]
	secrets := map[string]string{allowlistARN: "allowed.test"}

	public := runStandIn(ctx, t, cli, standIn{
		name: "public", image: agentImage, user: "0:0",
		entrypoint: []string{"/bin/busybox", "nc", "-ll", "-p", "443", "-e", "/bin/echo", "public-host-reached"},
		networks:   []netAlias{{internet, []string{"allowed.test", "denied.test"}}},
	})

	tier, err := ecsdouble.RenderTemplateFile(egressTemplate, map[string]string{
		"proxy_image": proxyImage, "aws_region": "us-east-1", "log_group": "/ecs/test/egress",
		"egress_port": "3128", "allowed_ports": vars["allowed_ports"], "egress_max_tunnels": "64",
		"egress_cpu": "256", "egress_memory": "512", "proxy_domain_whitelist_arn": allowlistARN,
	})
	if err != nil {
		t.Fatal(err)
	}
	tierDefs, err := ecsdouble.ParseContainerDefinitions(tier)
	if err != nil {
		t.Fatal(err)
	}
	tierDef := tierDefs[0]
	env := map[string]string{}
	for _, kv := range tierDef.Environment {
		env[kv.Name] = kv.Value
	}
	for _, s := range tierDef.Secrets {
		v, ok := secrets[s.ValueFrom]
		if !ok {
			t.Fatalf("egress tier secret %s (%s): not the workspace task's allowlist parameter", s.Name, s.ValueFrom)
		}
		env[s.Name] = v
	}
	// Test wiring: the stand-in internet is a private Docker network, so
	// the tier must be told its hosts may resolve to private addresses.
	env["PROXY_PRIVATE_HOSTS"] = "allowed.test,denied.test"
	runStandIn(ctx, t, cli, standIn{
		name: "egress", image: proxyImage, user: tierDef.User, env: env,
		networks: []netAlias{{internet, nil}, {wsNet, []string{strings.Split(vars["egress_proxy"], ":")[0]}}},
	})

	// sg-0123abcd is the workspace group (newRuntime's); sg-0open0000 a
	// group with a route to the stand-in internet, as the former default
	// (443 to 0.0.0.0/0) was: the control below.
	d := ecsdouble.Start(t, ecsdouble.Options{Docker: cli,
		SecurityGroups: map[string]string{"sg-0123abcd": wsNet, "sg-0open0000": internet},
		Secrets:        secrets,
		TemplateVars:   map[string]string{"agent_image": agentImage, "proxy_image": proxyImage}})
	rt, _ := newRuntime(t, d)
	started, err := rt.Start(ctx, workspace.StartSpec{Token: token(t), Conversation: "egress", Tenant: "acme"})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	info, err := waitReady(ctx, d, rt, started.ID)
	if err != nil {
		t.Fatal(err)
	}
	sh := func(script string) string {
		out, _ := runCommand(ctx, t, rt, info, "/bin/sh", "-c", script)
		return string(out)
	}
	connect := func(authority string) string {
		return sh(fmt.Sprintf(`(printf 'CONNECT %[1]s HTTP/1.1\r\nHost: %[1]s\r\n\r\n'; sleep 2) | nc -w 5 127.0.0.1 8080 2>&1; echo "rc=$?"`, authority))
	}

	direct := fmt.Sprintf("nc -w 3 %s 443 </dev/null 2>&1; echo rc=$?", public)
	t.Run("direct connection fails", func(t *testing.T) {
		out := sh(direct)
		if strings.Contains(out, "public-host-reached") || strings.Contains(out, "rc=0") {
			t.Fatalf("the task reached the public host %s directly:\n%s", public, out)
		}
	})
	t.Run("control: a group with a route out lets the agent bypass the proxy", func(t *testing.T) {
		open, _ := newRuntime(t, d, func(o *ecs.Options) { o.SecurityGroups = []string{"sg-0123abcd", "sg-0open0000"} })
		st, err := open.Start(ctx, workspace.StartSpec{Token: token(t), Conversation: "egress-open", Tenant: "acme"})
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
		oinfo, err := waitReady(ctx, d, open, st.ID)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := runCommand(ctx, t, open, oinfo, "/bin/sh", "-c", direct)
		if !strings.Contains(string(out), "public-host-reached") {
			t.Fatalf("with a route out the direct connection should succeed (else the check above proves nothing):\n%s", out)
		}
	})
	t.Run("allowlisted name through the proxy", func(t *testing.T) {
		out := connect("allowed.test:443")
		if !strings.Contains(out, " 200 ") || !strings.Contains(out, "public-host-reached") {
			t.Fatalf("CONNECT allowed.test through sidecar and tier:\n%s", out)
		}
	})
	t.Run("name not on the allowlist is refused", func(t *testing.T) {
		out := connect("denied.test:443")
		if !strings.Contains(out, " 403 ") || !strings.Contains(out, "host_not_allowed") || strings.Contains(out, "public-host-reached") {
			t.Fatalf("CONNECT denied.test:\n%s", out)
		}
	})
	t.Run("task metadata endpoint yields no credentials", func(t *testing.T) {
		out := sh("nc -w 3 169.254.170.2 80 </dev/null 2>&1; echo rc=$?")
		if strings.Contains(out, "rc=0") {
			t.Fatalf("169.254.170.2:80 is reachable from the task:\n%s", out)
		}
		out = connect("169.254.170.2:80")
		if !strings.Contains(out, " 403 ") {
			t.Fatalf("the proxy did not refuse the metadata address:\n%s", out)
		}
		out = sh("tr '\\0' '\\n' </proc/1/environ; echo; env")
		if strings.Contains(out, "AWS_CONTAINER_CREDENTIALS") || strings.Contains(out, "AWS_ACCESS_KEY_ID") {
			t.Fatalf("the agent's environment points at credentials:\n%s", out)
		}
	})
}

type netAlias struct {
	network string
	aliases []string
}

type standIn struct {
	name, image, user string
	entrypoint        []string
	env               map[string]string
	networks          []netAlias // the first is the container's network at create
}

// runStandIn starts a stand-in container (clean-up registered before the
// create) and returns its address on its first network.
func runStandIn(ctx context.Context, t *testing.T, cli *client.Client, s standIn) string {
	t.Helper()
	name := "wsd-egress-" + s.name + "-" + token(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := cli.ContainerRemove(ctx, name, container.RemoveOptions{Force: true}); err != nil && !client.IsErrNotFound(err) {
			t.Errorf("cleanup: remove %s: %v", name, err)
		}
	})
	var env []string
	for k, v := range s.env {
		env = append(env, k+"="+v)
	}
	first := s.networks[0]
	_, err := cli.ContainerCreate(ctx,
		&container.Config{Image: s.image, User: s.user, Env: env, Entrypoint: s.entrypoint,
			Labels: map[string]string{ecsdouble.LabelCluster: name}},
		&container.HostConfig{NetworkMode: container.NetworkMode(first.network), ReadonlyRootfs: true,
			CapDrop: []string{"ALL"}, CapAdd: []string{"NET_BIND_SERVICE"}},
		&network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{first.network: {Aliases: first.aliases}}},
		nil, name)
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	for _, n := range s.networks[1:] {
		if err := cli.NetworkConnect(ctx, n.network, name, &network.EndpointSettings{Aliases: n.aliases}); err != nil {
			t.Fatalf("connect %s to %s: %v", name, n.network, err)
		}
	}
	if err := cli.ContainerStart(ctx, name, container.StartOptions{}); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	info, err := cli.ContainerInspect(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	ep := info.NetworkSettings.Networks[first.network]
	if ep == nil || ep.IPAddress == "" {
		t.Fatalf("%s has no address on %s", name, first.network)
	}
	return ep.IPAddress
}
