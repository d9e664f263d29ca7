package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/workspaced/workspaced/internal/redistest"
	"github.com/workspaced/workspaced/internal/testenv"
	"github.com/workspaced/workspaced/store/storetest"
)

// faultBinary builds workspaced with its crash points (-tags faultpoints)
// once per test binary.
var faultBin struct {
	once sync.Once
	path string
	err  error
}

func faultBinary(t *testing.T) string {
	t.Helper()
	faultBin.once.Do(func() {
		dir, err := os.MkdirTemp("", "wsfault")
		if err != nil {
			faultBin.err = err
			return
		}
		bins.cleanups = append(bins.cleanups, func() { _ = os.RemoveAll(dir) })
		cmd := exec.Command("go", "build", "-tags", "faultpoints", "-o", dir+"/workspaced", "./cmd/workspaced")
		cmd.Dir = "../.."
		if out, err := cmd.CombinedOutput(); err != nil {
			faultBin.err = errors.New(string(out))
			return
		}
		faultBin.path = dir + "/workspaced"
	})
	if faultBin.err != nil {
		t.Fatalf("build workspaced -tags faultpoints: %v", faultBin.err)
	}
	return faultBin.path
}

// proc is one workspaced process of a crash test.
type proc struct {
	cmd    *exec.Cmd
	addr   chan string
	exited chan error
	mu     sync.Mutex
	logs   bytes.Buffer
}

func startProc(t *testing.T, bin string, env map[string]string) *proc {
	t.Helper()
	cmd := exec.Command(bin, "serve")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Env = append(cmd.Env, "PATH="+os.Getenv("PATH"), "DOCKER_HOST="+os.Getenv("DOCKER_HOST"))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, addr: make(chan string, 1), exited: make(chan error, 1)}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.logs.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "workspaced started" {
				p.addr <- line.Addr
			}
		}
		p.exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			p.mu.Lock()
			t.Logf("workspaced log:\n%s", p.logs.String())
			p.mu.Unlock()
		}
	})
	return p
}

func (p *proc) stack(t *testing.T) stack {
	t.Helper()
	select {
	case a := <-p.addr:
		return stack{t: t, url: "http://" + a}
	case err := <-p.exited:
		t.Fatalf("workspaced exited early: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("workspaced did not start")
	}
	return stack{}
}

// §3: SIGKILL at each step of provisioning a new conversation (the
// process kills itself at a crash point compiled only into -tags
// faultpoints builds), restart on the same Redis, sockets and engine: the
// next execute succeeds within normal provisioning time (PROVISION_TIMEOUT
// 30 s here; before the fix the conversation stayed queued behind a
// 2-minute lock, and a started workspace waited ~60 s for the
// reconciler), and one workspace serves the conversation.
func TestFaultCrashDuringProvisioning(t *testing.T) {
	t.Parallel()
	bin := faultBinary(t)
	cli := testenv.Docker(t)
	testenv.Image(t, cli, testImage())
	for _, point := range []string{"locked", "created", "started", "running", "claimed"} {
		t.Run(point, func(t *testing.T) {
			rs := redistest.Start(t)
			storetest.Audit(t, rs, "")
			env, deployment, _ := stackEnv(t, rs.URL, map[string]string{
				"LOG_FORMAT": "json", "PROVISION_TIMEOUT": "30s", "PROVISION_LOCK_TTL": "4s",
				"WARM_POOL_MIN_SIZE": "0", "RECONCILE_INTERVAL": "1h", "GC_INTERVAL": "1h",
			})
			t.Cleanup(func() { removeDeployment(t, cli, deployment) })

			env["WORKSPACED_CRASH_AT"] = point
			crashing := startProc(t, bin, env)
			s := crashing.stack(t)
			ctx := ctxFor(t, 60*time.Second)
			if evs, err := s.exec(ctx, "conv-crash", `{"kind":"command","argv":["echo","lost"]}`); err == nil && final(evs).Event == "done" {
				t.Fatalf("the execute finished; the process should have died at %q (events %v)", point, names(evs))
			}
			select {
			case err := <-crashing.exited:
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
					t.Fatalf("workspaced exited with %v, want SIGKILL at %q", err, point)
				}
			case <-ctx.Done():
				t.Fatalf("workspaced did not crash at %q", point)
			}

			delete(env, "WORKSPACED_CRASH_AT")
			s = startProc(t, bin, env).stack(t)
			evs, err := s.exec(ctx, "conv-crash", `{"kind":"command","argv":["echo","served"]}`)
			if err != nil {
				t.Fatalf("execute after restart: %v", err)
			}
			if f := final(evs); f.Event != "done" || stdout(evs) != "served\n" {
				t.Fatalf("execute after restart: events %v, final %s %s", names(evs), f.Event, f.Data)
			}
			running := 0
			for _, c := range listDeployment(t, cli, deployment) {
				if c.State == "running" {
					running++
				}
			}
			if running != 1 {
				t.Fatalf("%d running workspaces after the crash at %q, want 1", running, point)
			}
		})
	}
}
