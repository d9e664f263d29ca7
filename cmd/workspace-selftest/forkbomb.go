package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/workspaced/workspaced/selftest"
)

// bombResult is what the fork bomb helper prints.
type bombResult struct {
	Forked    int    `json:"forked"`
	StoppedBy string `json:"stopped_by"` // "EAGAIN", "cap", "timeout" or "error: ..."
	Holder    string `json:"holder"`
}

// forkBombMain forks holders until fork fails, the cap or the deadline,
// then kills them all. It runs in a process of its own: if the Go runtime
// cannot create a thread at the limit it dies, and Pdeathsig takes its
// children with it.
func forkBombMain(args []string) int {
	fs := flag.NewFlagSet(helperForkBomb, flag.ContinueOnError)
	max := fs.Int("max", 8192, "")
	timeout := fs.Duration("timeout", 30*time.Second, "")
	if fs.Parse(args) != nil {
		return exitUsage
	}
	runtime.LockOSThread() // Pdeathsig follows the forking thread
	path, argv, env, cleanup := holderCommand()
	defer cleanup()
	res := bombResult{Holder: path}
	deadline := time.Now().Add(*timeout)
	pgid := 0
	for {
		if res.Forked >= *max {
			res.StoppedBy = "cap"
			break
		}
		if time.Now().After(deadline) {
			res.StoppedBy = "timeout"
			break
		}
		pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{Env: env, Sys: &syscall.SysProcAttr{
			Setpgid: true, Pgid: pgid, Pdeathsig: syscall.SIGKILL,
		}})
		if errors.Is(err, syscall.EAGAIN) {
			res.StoppedBy = "EAGAIN"
			break
		}
		if err != nil {
			res.StoppedBy = "error: " + err.Error()
			break
		}
		if pgid == 0 {
			pgid = pid
		}
		res.Forked++
	}
	if pgid != 0 {
		_ = unix.Kill(-pgid, unix.SIGKILL)
	}
	for {
		var ws unix.WaitStatus
		if _, err := unix.Wait4(-1, &ws, 0, nil); errors.Is(err, unix.ECHILD) {
			break
		}
	}
	_ = json.NewEncoder(os.Stdout).Encode(res)
	return 0
}

// holderCommand picks the cheapest holder that can run: the tiny one in
// the temporary directory, else the self-test itself.
func holderCommand() (string, []string, []string, func()) {
	if dir, err := os.MkdirTemp("", "selftest-bomb-"); err == nil {
		cleanup := func() { _ = os.RemoveAll(dir) }
		if p, err := tinyHolder(dir); err == nil {
			pid, err := syscall.ForkExec(p, []string{p}, &syscall.ProcAttr{Sys: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}})
			if err == nil {
				holder{pid: pid}.kill()
				return p, []string{p}, nil, cleanup
			}
		}
		cleanup()
	}
	self, _ := os.Executable()
	return self, []string{self, helperHold}, []string{"GOMAXPROCS=1"}, func() {}
}

// runForkBomb runs the helper and then checks that the workspace survived:
// the agent answers /health and a new process can start.
func runForkBomb(ctx context.Context, cfg config, env runtimeEnv) (bombResult, string, error) {
	self, err := os.Executable()
	if err != nil {
		return bombResult{}, "", fmt.Errorf("find myself: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.forkTimeout+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, self, helperForkBomb, "-max", fmt.Sprint(cfg.forkMax), "-timeout", cfg.forkTimeout.String())
	out, err := cmd.Output()
	var res bombResult
	if jerr := json.Unmarshal(out, &res); jerr != nil {
		var stderr string
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			stderr = string(ee.Stderr)
			if len(stderr) > 200 {
				stderr = stderr[:200]
			}
		}
		return res, "", fmt.Errorf("fork bomb helper gave no result (%v): %s", err, stderr)
	}
	// Recovery is not instant: killed holders are reaped by their parent,
	// which has just done so; give the agent a moment to answer.
	var after string
	healthErr := agentHealth(ctx, env)
	forkErr := error(nil)
	if h, err := startHolder(); err != nil {
		forkErr = err
	} else {
		h.kill()
	}
	switch {
	case healthErr != nil:
		after = "agent NOT answering /health afterwards: " + healthErr.Error()
	case forkErr != nil:
		after = "a new process cannot start afterwards: " + forkErr.Error()
	default:
		after = "agent answers /health and a new process starts afterwards"
	}
	if healthErr != nil || forkErr != nil {
		return res, after, errors.New(after)
	}
	return res, after, nil
}

// agentHealth asks the workspace's own agent for GET /health (it answers
// while busy with this run).
func agentHealth(ctx context.Context, env runtimeEnv) error {
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	url := "http://" + env.agentAddr + "/health"
	if env.runtime == selftest.RuntimeDocker {
		sock := env.agentSocket
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}
		url = "http://agent/health"
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /health: %s", resp.Status)
	}
	return nil
}
