package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// procSpec is what to start.
type procSpec struct {
	argv  []string
	env   []string
	dir   string
	stdin io.Reader // nil for /dev/null
}

// proc is a started process group. Its leader's PID is the group ID.
type proc struct {
	cmd    *exec.Cmd
	pgid   int
	stdout *os.File
	stderr *os.File
	waitc  chan error // the leader's cmd.Wait result
}

// startProc starts spec as the leader of a new process group, with its
// stdout and stderr on pipes the caller reads.
func startProc(spec procSpec, waitDelay time.Duration) (*proc, error) {
	path, err := lookPath(spec.argv[0], spec.env)
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("create stdout pipe: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		closeAll(outR, outW)
		return nil, fmt.Errorf("create stderr pipe: %w", err)
	}
	cmd := &exec.Cmd{
		Path:        path,
		Args:        spec.argv,
		Env:         spec.env,
		Dir:         spec.dir,
		Stdin:       spec.stdin,
		Stdout:      outW,
		Stderr:      errW,
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
		WaitDelay:   waitDelay,
	}
	err = startRaised(cmd)
	closeAll(outW, errW) // the child has its copies
	if err != nil {
		closeAll(outR, errR)
		return nil, fmt.Errorf("start %s: %w", spec.argv[0], err)
	}
	p := &proc{cmd: cmd, pgid: cmd.Process.Pid, stdout: outR, stderr: errR, waitc: make(chan error, 1)}
	go func() { p.waitc <- cmd.Wait() }()
	return p, nil
}

// lookPath resolves name against the PATH in env (not the agent's own).
func lookPath(name string, env []string) (string, error) {
	if containsSlash(name) {
		return name, nil
	}
	for _, kv := range env {
		if len(kv) > 5 && kv[:5] == "PATH=" {
			for _, dir := range splitList(kv[5:]) {
				p := dir + "/" + name
				if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
					return p, nil
				}
			}
		}
	}
	return "", fmt.Errorf("start %s: %w", name, exec.ErrNotFound)
}

func containsSlash(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return true
		}
	}
	return false
}

func splitList(p string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(p); i++ {
		if i == len(p) || p[i] == ':' {
			if i > start {
				out = append(out, p[start:i])
			}
			start = i + 1
		}
	}
	return out
}

func closeAll(fs ...*os.File) {
	for _, f := range fs {
		_ = f.Close()
	}
}

// exit is how a run's process ended.
type exit struct {
	code   int
	signal string
	reason string
}

// wait waits for the leader to exit, killing the group when ctx ends
// (SIGTERM, then SIGKILL after grace). Either way it then kills and reaps
// whatever is left of the group, so when it returns no member runs.
// cause names why ctx ended ("timeout", "cancelled", "shutdown").
func (p *proc) wait(ctx context.Context, grace time.Duration, cause func() string) exit {
	var (
		err    error
		reason string
	)
	select {
	case err = <-p.waitc:
	case <-ctx.Done():
		reason = cause()
		_ = unix.Kill(-p.pgid, unix.SIGTERM)
		t := time.NewTimer(grace)
		select {
		case err = <-p.waitc:
			t.Stop()
		case <-t.C:
			_ = unix.Kill(-p.pgid, unix.SIGKILL)
			err = <-p.waitc
		}
	}
	reapGroup(p.pgid)
	ex := exit{reason: reason}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		ex.code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			ex.code = -1
			ex.signal = unix.SignalName(ws.Signal())
		}
	default: // exec.ErrWaitDelay: the leader exited, a pipe stayed open
		if p.cmd.ProcessState != nil {
			ex.code = p.cmd.ProcessState.ExitCode()
		}
	}
	return ex
}

// reapGroup kills every remaining member of process group pgid and reaps
// those that are our children (all of them when the agent is a subreaper
// or PID 1). It returns when the group is empty or after a bound.
func reapGroup(pgid int) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if err := unix.Kill(-pgid, unix.SIGKILL); errors.Is(err, unix.ESRCH) {
			return
		}
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PGID, pgid, &info, unix.WEXITED, nil)
		if errors.Is(err, unix.ECHILD) {
			// Members left are not our children (they were reparented
			// elsewhere); they are SIGKILLed, their reaper will reap them.
			return
		}
	}
}

// killStrays kills every other process of the container and reaps it, when
// the agent is the container's PID 1: processes that left the run's group
// (setsid, setpgid) must not outlive the run either. Elsewhere it does
// nothing.
func killStrays() {
	if os.Getpid() != 1 {
		return
	}
	_ = unix.Kill(-1, unix.SIGKILL) // every process but PID 1 itself
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		_, err := unix.Wait4(-1, nil, 0, nil)
		if errors.Is(err, unix.ECHILD) {
			return
		}
		if err != nil && !errors.Is(err, unix.EINTR) {
			return
		}
	}
}
