//go:build unix

package proxytest

import (
	"os"
	"syscall"
)

// processGroup starts a proxy in a process group of its own.
func processGroup() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// killGroup kills p and every process of its group.
func killGroup(p *os.Process) {
	syscall.Kill(-p.Pid, syscall.SIGKILL) //nolint:errcheck // gone already, at worst
	p.Kill()                              //nolint:errcheck
}
