package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tickstream/tickstream/internal/wiretest"
)

// readme returns the repository's README.
func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestHelpMatchesREADME: -h prints exactly what the README shows for it.
func TestHelpMatchesREADME(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"-h"}, &stdout, &stderr); code != 0 {
		t.Fatalf("-h: exit status %d", code)
	}
	block := wiretest.CodeBlock(t, "../README.md", "```console\n$ go run ./check -h\n")
	if diff := cmp.Diff(block, stderr.String()); diff != "" {
		t.Errorf("-h output differs from the README's (-README +output):\n%s", diff)
	}
}

// TestJSONFieldsInREADME: every field of the -json report (as the golden
// file pins it) is in the README's table of them, and nothing else is.
func TestJSONFieldsInREADME(t *testing.T) {
	b, err := os.ReadFile("testdata/report.json")
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Checks []map[string]any `json:"checks"`
	}
	var top map[string]any
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(b, &rep)
	fields := []string{"redirected_from", "release_every_ms", "block_bytes"} // set only by paths the golden's report has not
	for k := range top {
		fields = append(fields, k)
	}
	for _, c := range rep.Checks {
		for k := range c {
			fields = append(fields, k)
		}
	}
	slices.Sort(fields)
	fields = slices.Compact(fields)
	_, table, _ := strings.Cut(readme(t), "| field | meaning |\n")
	table, _, _ = strings.Cut(table, "\n\n")
	var documented []string
	for line := range strings.SplitSeq(table, "\n") {
		cell, _, _ := strings.Cut(strings.TrimPrefix(line, "| "), " |")
		for name := range strings.SplitSeq(cell, ", ") {
			if n := strings.Trim(name, "`"); n != "" && !strings.HasPrefix(n, "|") {
				documented = append(documented, n)
			}
		}
	}
	slices.Sort(documented)
	documented = slices.Compact(documented) // "ok" is the report's and each finding's
	if diff := cmp.Diff(fields, documented); diff != "" {
		t.Errorf("-json fields (-report +README):\n%s", diff)
	}
}
