package main

import (
	"bytes"
	"debug/buildinfo"
	"errors"
	"flag"
	"os/exec"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tickstream/tickstream/internal/wiretest"
)

// TestHelpMatchesREADME: -h prints exactly what the documentation of the
// server (docs/server.md, which the README links) shows for it.
func TestHelpMatchesREADME(t *testing.T) {
	var out bytes.Buffer
	if _, err := parseConfig([]string{"-h"}, func(string) string { return "" }, &out); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v, want flag.ErrHelp", err)
	}
	block := wiretest.CodeBlock(t, "../docs/server.md", "```console\n$ go run ./local -h\n")
	if diff := cmp.Diff(block, out.String()); diff != "" {
		t.Errorf("-h output differs from docs/server.md's (-docs +output):\n%s", diff)
	}
}

// TestCommandLineErrors runs the built command: an unknown flag is reported
// once, with the usage, and exits 2; -version prints the version line of
// the binary's own build information and exits 0.
func TestCommandLineErrors(t *testing.T) {
	bin := buildCommand(t)
	out, err := exec.Command(bin, "-bogus").CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Errorf("-bogus: %v, want exit status 2", err)
	}
	if n := strings.Count(string(out), "flag provided but not defined: -bogus"); n != 1 || !strings.Contains(string(out), "Usage: tickstream [flags]") {
		t.Errorf("-bogus printed the error %d times (want once) and then:\n%s", n, out)
	}

	out, err = exec.Command(bin, "-version").CombinedOutput()
	if err != nil {
		t.Fatalf("-version: %v\n%s", err, out)
	}
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if want := version(info, true) + "\n"; string(out) != want {
		t.Errorf("-version printed %q, want %q", out, want)
	}
}

func TestVersion(t *testing.T) {
	info := func(version string, settings ...string) *debug.BuildInfo {
		bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/tickstream/tickstream", Version: version}}
		for i := 0; i+1 < len(settings); i += 2 {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
		}
		return bi
	}
	for _, tt := range []struct {
		info *debug.BuildInfo
		want string
	}{
		{info("v1.2.3"), "tickstream v1.2.3 go1.26.8"},
		{info("v0.0.0-20261125152732-0d1dba075931+dirty", "vcs.revision", "0d1dba075931aaaa", "vcs.modified", "true"),
			"tickstream v0.0.0-20261125152732-0d1dba075931+dirty go1.26.8"},
		{info("(devel)"), "tickstream (devel) go1.26.8"},
		{info("(devel)", "vcs.revision", "0123456789abcdef0123", "vcs.time", "2026-11-25T14:55:24Z", "vcs.modified", "false"),
			"tickstream (devel) 0123456789ab 2026-11-25T14:55:24Z go1.26.8"},
		{info("(devel)", "vcs.revision", "0123456789abcdef0123", "vcs.time", "2026-11-25T14:55:24Z", "vcs.modified", "true"),
			"tickstream (devel) 0123456789ab 2026-11-25T14:55:24Z (modified) go1.26.8"},
	} {
		if got := version(tt.info, true); got != tt.want {
			t.Errorf("version = %q, want %q", got, tt.want)
		}
	}
	if got := version(nil, false); got != "tickstream: no build information" {
		t.Errorf("version without build information = %q", got)
	}
}
