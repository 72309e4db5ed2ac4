package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/tickstream/tickstream/internal/browsertest"
	"github.com/tickstream/tickstream/internal/wiretest"
)

// TestReportInBrowser opens -report pages in Chromium from a file, as a
// user does: the battery's and stream mode's. Each draws every timeline,
// and raises no error, not even a Content-Security-Policy refusal (which
// Chromium logs as one). With -update it rewrites the screenshots the docs
// show.
func TestReportInBrowser(t *testing.T) {
	for _, tt := range []struct {
		name       string
		report     Report
		polylines  int
		screenshot string
	}{
		{"battery", syntheticReport(), 5, "../docs/report.png"},
		{"stream mode", syntheticStreamReport(), 2, "../docs/stream-report.png"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "report.html")
			if err := os.WriteFile(file, renderReport(tt.report), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, problems := browsertest.New(t)
			if err := chromedp.Do(ctx, chromedp.Navigate("file://"+file)); err != nil {
				t.Fatal(err)
			}
			browsertest.WaitFor(ctx, t, "the timelines", fmt.Sprintf(`document.querySelectorAll("figure svg polyline").length === %d`, tt.polylines))
			// The stylesheet applied: the failing verdict's class turns it red.
			browsertest.WaitFor(ctx, t, "the stylesheet", `getComputedStyle(document.querySelector("td.fail")).color === "rgb(187, 0, 0)"`)
			shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
			if err != nil {
				t.Fatal(err)
			}
			if wiretest.Updating() {
				if err := os.WriteFile(tt.screenshot, shot, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if p := problems(); len(p) > 0 {
				t.Errorf("the report raised errors:\n%s", strings.Join(p, "\n"))
			}
		})
	}
}
