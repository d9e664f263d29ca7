package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// Hidden first arguments: the self-test re-executes itself for probes that
// need a process of their own.
const (
	helperTrue     = "__selftest_true"     // exit 0 (the user-namespace probe)
	helperHold     = "__selftest_hold"     // block until killed
	helperForkBomb = "__selftest_forkbomb" // the fork bomb, see forkbomb.go
)

// helper runs a hidden helper if args name one.
func helper(args []string) (int, bool) {
	switch args[0] {
	case helperTrue:
		return 0, true
	case helperHold:
		for {
			_ = unix.Pause()
		}
	case helperForkBomb:
		return forkBombMain(args[1:]), true
	}
	return 0, false
}

// holder is a process that does nothing until killed.
type holder struct{ pid int }

func (h holder) kill() {
	_ = unix.Kill(h.pid, unix.SIGKILL)
	var ws unix.WaitStatus
	_, _ = unix.Wait4(h.pid, &ws, 0, nil)
}

// startHolder starts one holder (the self-test binary itself).
func startHolder() (holder, error) {
	self, err := os.Executable()
	if err != nil {
		return holder{}, fmt.Errorf("find myself: %w", err)
	}
	pid, err := syscall.ForkExec(self, []string{self, helperHold}, &syscall.ProcAttr{
		Env: []string{"GOMAXPROCS=1"},
		Sys: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL},
	})
	if err != nil {
		return holder{}, err
	}
	return holder{pid: pid}, nil
}

// tinyHolder writes a minimal static executable that blocks in pause(2)
// forever: one thread and a few pages, so a fork bomb made of them
// reaches a limit of thousands of processes cheaply. amd64 only; elsewhere
// (or where dir is noexec) the caller re-executes the self-test.
func tinyHolder(dir string) (string, error) {
	if runtime.GOARCH != "amd64" {
		return "", errors.New("no tiny holder for " + runtime.GOARCH)
	}
	code := []byte{
		0xb8, 0x22, 0x00, 0x00, 0x00, // mov eax, 34 (pause)
		0x0f, 0x05, // syscall
		0xeb, 0xf7, // jmp back to mov
	}
	const base, hdr = 0x400000, 64 + 56
	size := uint64(hdr + len(code))
	b := make([]byte, 0, size)
	le := binary.LittleEndian
	b = append(b, 0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	b = le.AppendUint16(b, 2)        // ET_EXEC
	b = le.AppendUint16(b, 0x3e)     // EM_X86_64
	b = le.AppendUint32(b, 1)        // EV_CURRENT
	b = le.AppendUint64(b, base+hdr) // entry
	b = le.AppendUint64(b, 64)       // phoff
	b = le.AppendUint64(b, 0)        // shoff
	b = le.AppendUint32(b, 0)        // flags
	b = le.AppendUint16(b, 64)       // ehsize
	b = le.AppendUint16(b, 56)       // phentsize
	b = le.AppendUint16(b, 1)        // phnum
	b = le.AppendUint16(b, 64)       // shentsize
	b = le.AppendUint16(b, 0)        // shnum
	b = le.AppendUint16(b, 0)        // shstrndx
	b = le.AppendUint32(b, 1)        // PT_LOAD
	b = le.AppendUint32(b, 5)        // R+X
	b = le.AppendUint64(b, 0)        // offset
	b = le.AppendUint64(b, base)     // vaddr
	b = le.AppendUint64(b, base)     // paddr
	b = le.AppendUint64(b, size)     // filesz
	b = le.AppendUint64(b, size)     // memsz
	b = le.AppendUint64(b, 0x1000)   // align
	b = append(b, code...)
	path := filepath.Join(dir, "selftest-hold")
	if err := os.WriteFile(path, b, 0o700); err != nil {
		return "", fmt.Errorf("write tiny holder: %w", err)
	}
	return path, nil
}
