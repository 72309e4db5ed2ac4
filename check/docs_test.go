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

// checkDoc returns the check's reference, docs/check.md.
func checkDoc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../docs/check.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestHelpMatchesDocs: -h prints exactly what docs/check.md shows for it.
func TestHelpMatchesDocs(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"-h"}, &stdout, &stderr); code != 0 {
		t.Fatalf("-h: exit status %d", code)
	}
	block := wiretest.CodeBlock(t, "../docs/check.md", "```console\n$ go run ./check -h\n")
	if diff := cmp.Diff(block, stderr.String()); diff != "" {
		t.Errorf("-h output differs from docs/check.md's (-doc +output):\n%s", diff)
	}
}

// TestJSONFieldsInDocs: every field of the -json reports (as the golden
// files of both modes pin them) is in docs/check.md's table of them, and
// nothing else is.
func TestJSONFieldsInDocs(t *testing.T) {
	fields := []string{"redirected_from", "release_every_ms", "block_bytes", "threshold_bytes"} // set only by paths the goldens' reports have not
	for _, golden := range []string{"testdata/report.json", "testdata/stream-report.json"} {
		b, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		var top map[string]any
		var rep struct {
			Checks []map[string]any `json:"checks"`
		}
		if err := json.Unmarshal(b, &top); err != nil {
			t.Fatal(err)
		}
		json.Unmarshal(b, &rep)
		for k := range top {
			fields = append(fields, k)
		}
		for _, c := range rep.Checks {
			for k := range c {
				fields = append(fields, k)
			}
		}
	}
	slices.Sort(fields)
	fields = slices.Compact(fields)
	_, table, _ := strings.Cut(checkDoc(t), "| field | meaning |\n")
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
		t.Errorf("-json fields (-goldens +docs/check.md):\n%s", diff)
	}
}
