package main

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"
)

// A usageError is a command line the flag package refused; it has already
// printed the error and the usage.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// errVersion stops the command once -version has printed the version.
var errVersion = errors.New("version printed")

// version returns the command's version line, from the build information
// the go command records in the binary: the module version, which names the
// commit (a tag for go install ...@v1.2.3; in a clone, a pseudo-version with
// the commit's time and hash, +dirty if the tree had changes), and the Go
// version. A binary whose version is "(devel)" gets the commit from the VCS
// settings, where there are any.
func version(info *debug.BuildInfo, ok bool) string {
	if !ok {
		return "tickstream: no build information"
	}
	line := "tickstream " + info.Main.Version
	if info.Main.Version == "(devel)" || info.Main.Version == "" {
		settings := map[string]string{}
		for _, s := range info.Settings {
			settings[s.Key] = s.Value
		}
		if rev := settings["vcs.revision"]; rev != "" {
			line += " " + rev[:min(len(rev), 12)]
			if t := settings["vcs.time"]; t != "" {
				line += " " + t
			}
			if settings["vcs.modified"] == "true" {
				line += " (modified)"
			}
		}
	}
	return line + " " + info.GoVersion
}

// levelFlag is a -log-level value, written in lower case as it is typed.
type levelFlag struct{ level *slog.Level }

func (f levelFlag) String() string {
	if f.level == nil {
		return ""
	}
	return strings.ToLower(f.level.String())
}

func (f levelFlag) Set(s string) error { return f.level.UnmarshalText([]byte(s)) }

// sizeFlag is a -stream-memory value: bytes, or a whole number of KiB, MiB
// or GiB ("64MiB"), written back in the largest unit that divides it.
type sizeFlag struct{ bytes *int64 }

var sizeUnits = []struct {
	name  string
	bytes int64
}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}

func (f sizeFlag) String() string {
	if f.bytes == nil {
		return ""
	}
	for _, u := range sizeUnits {
		if *f.bytes%u.bytes == 0 && *f.bytes != 0 {
			return strconv.FormatInt(*f.bytes/u.bytes, 10) + u.name
		}
	}
	return "0"
}

func (f sizeFlag) Set(s string) error {
	for _, u := range sizeUnits {
		if num, ok := strings.CutSuffix(s, u.name); ok || u.bytes == 1 {
			if !ok {
				num = s // plain bytes
			}
			n, err := strconv.ParseInt(num, 10, 64)
			if err != nil || n < 1 || n > (1<<62)/u.bytes {
				return fmt.Errorf("want a positive size such as 64MiB, 1GiB or 1048576 (bytes)")
			}
			*f.bytes = n * u.bytes
			return nil
		}
	}
	return nil
}
