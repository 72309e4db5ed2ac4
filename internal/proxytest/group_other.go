//go:build !unix

package proxytest

import (
	"os"
	"syscall"
)

// processGroup needs nothing where there are no process groups.
func processGroup() *syscall.SysProcAttr { return nil }

// killGroup kills p.
func killGroup(p *os.Process) { p.Kill() } //nolint:errcheck // gone already, at worst
