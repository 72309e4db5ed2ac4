package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/tickstream/tickstream/internal/browsertest"
	"github.com/tickstream/tickstream/internal/wiretest"
)

// reportScreenshot is the picture of a -report page the README shows; the
// test rewrites it when run with -update.
const reportScreenshot = "../docs/report.png"

// TestReportInBrowser opens a -report page in Chromium from a file, as a
// user does: it draws every timeline, and raises no error, not even a
// Content-Security-Policy refusal (which Chromium logs as one).
func TestReportInBrowser(t *testing.T) {
	file := filepath.Join(t.TempDir(), "report.html")
	if err := os.WriteFile(file, renderReport(syntheticReport()), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, problems := browsertest.New(t)
	if err := chromedp.Do(ctx, chromedp.Navigate("file://"+file)); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitFor(ctx, t, "the timelines", `document.querySelectorAll("figure svg polyline").length === 5`)
	// The stylesheet applied: the failing verdict's class turns it red.
	browsertest.WaitFor(ctx, t, "the stylesheet", `getComputedStyle(document.querySelector("td.fail")).color === "rgb(187, 0, 0)"`)
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if wiretest.Updating() {
		if err := os.WriteFile(reportScreenshot, shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if p := problems(); len(p) > 0 {
		t.Errorf("the report raised errors:\n%s", strings.Join(p, "\n"))
	}
}
