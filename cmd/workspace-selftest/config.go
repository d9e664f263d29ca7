package main

import (
	"flag"
	"io"
	"time"
)

// config holds the expectations and probe targets; the defaults are the
// shipped configuration (docs/contracts.md §6 and the ECS task definition).
type config struct {
	runtime     string // "" detects
	uid, gid    int
	capBounding uint64
	memoryBytes int64
	pidsMax     int64 // Docker's per-container pids limit
	nproc       int64 // ECS: the nproc ulimit of the task definition
	proxyAddr   string
	egressProbe string
	deniedHost  string
	allowedHost string
	dnsProbe    string
	apparmor    string
	forkBomb    bool
	forkMax     int
	forkTimeout time.Duration
	dialTimeout time.Duration
	scanBudget  int
	pretty      bool
}

// capability bits of the four capabilities a workspace keeps: CHOWN(0),
// DAC_OVERRIDE(1), SETGID(6), SETUID(7).
const workspaceCaps = 1<<0 | 1<<1 | 1<<6 | 1<<7

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("workspace-selftest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.runtime, "runtime", "", "docker or ecs; empty detects it from the agent's environment")
	fs.IntVar(&c.uid, "uid", 1000, "expected uid")
	fs.IntVar(&c.gid, "gid", 1000, "expected gid")
	fs.Uint64Var(&c.capBounding, "cap-bounding", workspaceCaps, "expected capability bounding set (bit mask)")
	fs.Int64Var(&c.memoryBytes, "memory", 2<<30, "expected memory limit in bytes")
	fs.Int64Var(&c.pidsMax, "pids", 256, "expected pids limit (Docker)")
	fs.Int64Var(&c.nproc, "nproc", 4096, "expected nproc ulimit (ECS)")
	fs.StringVar(&c.proxyAddr, "proxy", "127.0.0.1:8080", "the credential proxy as the workspace sees it")
	fs.StringVar(&c.egressProbe, "egress-probe", "1.1.1.1:443", "a public host:port a direct connection to must fail")
	fs.StringVar(&c.deniedHost, "denied-host", "selftest-not-allowlisted.example.com:443", "a host:port the proxy must refuse")
	fs.StringVar(&c.allowedHost, "allowed-host", "", "a host:port the proxy must allow (empty: not checked)")
	fs.StringVar(&c.dnsProbe, "dns-probe", "example.org", "a name the DNS firewall must not resolve (ECS)")
	fs.StringVar(&c.apparmor, "apparmor", "workspace-container", "the AppArmor profile a workspace must run under on ECS; empty makes AppArmor optional there")
	fs.BoolVar(&c.forkBomb, "fork-bomb", true, "run the bounded fork bomb (on ECS it briefly uses the nproc budget every workspace of the instance shares)")
	fs.IntVar(&c.forkMax, "fork-max", 8192, "the fork bomb stops here if no limit stopped it first")
	fs.DurationVar(&c.forkTimeout, "fork-timeout", 30*time.Second, "the fork bomb's time limit")
	fs.DurationVar(&c.dialTimeout, "dial-timeout", 3*time.Second, "timeout of each network probe")
	fs.IntVar(&c.scanBudget, "scan-files", 50000, "at most this many files are examined per directory tree")
	fs.BoolVar(&c.pretty, "pretty", false, "indent the JSON report")
	return c, fs.Parse(args)
}
