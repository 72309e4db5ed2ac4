//go:build linux

package main

import "testing"

// TestKernelMemoryRead: on Linux the load tool finds the kernel's TCP and
// slab memory where it reads them.
func TestKernelMemoryRead(t *testing.T) {
	if tcp, ok := kernelTCPKiB(); !ok || tcp < 0 {
		t.Errorf("kernelTCPKiB() = %d, %v; want a figure from /proc/net/sockstat", tcp, ok)
	}
	if slab, ok := slabKiB(); !ok || slab <= 0 {
		t.Errorf("slabKiB() = %d, %v; want a figure from /proc/meminfo", slab, ok)
	}
}
