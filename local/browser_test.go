package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/tickstream/tickstream/handler"
	"github.com/tickstream/tickstream/internal/proxytest"
	"github.com/tickstream/tickstream/internal/wiretest"
)

// The browser tests need Chromium. Where it is missing they fail with the
// command that installs it, unless this variable is set (CI never sets it).
const skipBrowserEnv = "TICKSTREAM_SKIP_BROWSER"

// screenshotFile is the picture of the page the README shows; the browser
// test rewrites it when run with -update.
const screenshotFile = "../docs/page.png"

// pageOptions make the page's streams quick: ticks every 250ms, a burst of
// 100 events 10ms apart.
var pageOptions = []handler.Option{handler.WithInterval(250 * time.Millisecond), handler.WithFastDelay(10 * time.Millisecond)}

// newBrowser starts headless Chromium for the test and returns its context
// and a function that returns the console errors and exceptions the page
// has raised so far.
func newBrowser(t *testing.T) (context.Context, func() []string) {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv(skipBrowserEnv) != "" {
			t.Skipf("chromium not found and %s is set", skipBrowserEnv)
		}
		t.Fatalf("chromium not found: install it with `apt-get install chromium` (or set %s=1 to skip the browser tests)", skipBrowserEnv)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.WindowSize(1000, 1100),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })

	var mu sync.Mutex
	var problems []string
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	err = chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			problems = append(problems, fmt.Sprintf("exception: %s %+v", ev.ExceptionDetails.Text, ev.ExceptionDetails.Exception))
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				problems = append(problems, "console.error: "+strings.Join(args, " "))
			}
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.EntryLevelError {
				problems = append(problems, fmt.Sprintf("%s error: %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), problems...)
	}
}

// waitFor polls a JavaScript condition on the page until it holds.
func waitFor(ctx context.Context, t *testing.T, what, js string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		page, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
		t.Fatalf("waiting for %s (%s): %v\npage:\n%s", what, js, err, page)
	}
}

func text(ctx context.Context, t *testing.T, id string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#"+id)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestPageInBrowser loads the page from the runner in Chromium: it shows
// ticks, runs the burst to done, and after a server restart reconnects and
// continues the ids without a gap, all without a console error.
func TestPageInBrowser(t *testing.T) {
	ctx, problems := newBrowser(t)
	first := startRunner(t, nil, pageOptions...)

	if err := chromedp.Do(ctx, chromedp.Navigate(first.url+"/")); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "three ticks", `Number(document.getElementById("received").textContent) >= 3`)
	waitFor(ctx, t, "the open state", `document.getElementById("state").textContent === "open"`)

	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#burst"))); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "the burst's done", `document.getElementById("burst-state").textContent === "done"`)
	if got := text(ctx, t, "burst-progress"); got != "100 / 100" {
		t.Errorf("burst progress %q, want 100 / 100", got)
	}

	// Restart the server on the same address. Shutdown ends the stream
	// cleanly; the browser reconnects after the retry delay (1s) and sends
	// Last-Event-ID.
	lastBefore := text(ctx, t, "last-id")
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}
	startRunner(t, []string{"-addr", strings.TrimPrefix(first.url, "http://")}, pageOptions...)
	waitFor(ctx, t, "ticks after the restart",
		fmt.Sprintf(`Number(document.getElementById("last-id").textContent) >= %s + 3`, lastBefore))
	waitFor(ctx, t, "the open state after the restart", `document.getElementById("state").textContent === "open"`)
	if got := text(ctx, t, "gaps"); got != "0" {
		t.Errorf("the page counted %s gaps in the ids across the restart", got)
	}
	ids, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll("#ticks li")).map(li => li.dataset.id)`))
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(ids); i++ {
		if ids[i-1] == ids[i] || fmt.Sprint(mustAtoi(ids[i-1])-1) != ids[i] {
			t.Errorf("tick list not consecutive, newest first: %v", ids)
			break
		}
	}
	if len(ids) > 50 {
		t.Errorf("tick list holds %d items, want at most 50", len(ids))
	}

	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if wiretest.Updating() {
		if err := os.MkdirAll("../docs", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(screenshotFile, shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if p := problems(); len(p) > 0 {
		t.Errorf("the page raised errors:\n%s", strings.Join(p, "\n"))
	}
}

func mustAtoi(s string) int {
	var n int
	fmt.Sscan(s, &n)
	return n
}

// TestPageUnderPrefixInBrowser mounts the handler under /sse/ in another mux
// and checks that the page's relative URLs reach its streams.
func TestPageUnderPrefixInBrowser(t *testing.T) {
	ctx, problems := newBrowser(t)
	mux := http.NewServeMux()
	mux.Handle("/sse/", http.StripPrefix("/sse", handler.New(pageOptions...)))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer srv.CloseClientConnections()

	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/sse/")); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "two ticks", `Number(document.getElementById("received").textContent) >= 2`)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#burst"))); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "the burst's done", `document.getElementById("burst-state").textContent === "done"`)
	if p := problems(); len(p) > 0 {
		t.Errorf("the page raised errors:\n%s", strings.Join(p, "\n"))
	}
}

// TestPageVerdictThroughProxies runs the page's burst in Chromium through
// nginx with its default configuration, which holds /stream/fast in 4 KiB
// blocks, and through nginx with docs/nginx-sse.conf, which does not: the
// page shows the browser's own verdict of its path, with the largest hold.
func TestPageVerdictThroughProxies(t *testing.T) {
	r := startRunner(t, nil)
	upstream := strings.TrimPrefix(r.url, "http://")
	recipe, err := os.ReadFile("../docs/nginx-sse.conf")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, conf, verdict string
		advice              bool
	}{
		{"nginx, default", `location / { proxy_pass http://tickstream; }`, "buffered", true},
		{"nginx, docs/nginx-sse.conf", string(recipe), "live", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, problems := newBrowser(t)
			url := proxytest.Nginx(t, upstream, tt.conf)
			if err := chromedp.Do(ctx, chromedp.Navigate(url+"/")); err != nil {
				t.Fatal(err)
			}
			if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#burst"))); err != nil {
				t.Fatal(err)
			}
			waitFor(ctx, t, "the burst's done", `document.getElementById("burst-state").textContent === "done"`)
			got, err := chromedp.Run(ctx, chromedp.Evaluate[struct {
				Verdict string
				Hold    string
				Advice  bool
			}](`({Verdict: document.getElementById("burst-verdict").dataset.verdict,
			      Hold: document.getElementById("burst-hold").textContent,
			      Advice: !document.getElementById("burst-advice").hidden})`))
			if err != nil {
				t.Fatal(err)
			}
			var hold, events int
			if _, err := fmt.Sscanf(got.Hold, "largest hold %d ms over %d events", &hold, &events); err != nil || events != 100 {
				t.Fatalf("hold %q: want `largest hold N ms over 100 events`", got.Hold)
			}
			if got.Verdict != tt.verdict || got.Advice != tt.advice {
				t.Errorf("verdict %q (advice shown: %v) with %s, want %q (%v)", got.Verdict, got.Advice, got.Hold, tt.verdict, tt.advice)
			}
			// nginx releases the first 4 KiB (about 79 events) at about 3.9 s.
			if tt.verdict == "buffered" && (hold < 3000 || hold > 4500) {
				t.Errorf("largest hold %d ms through default nginx, want about 3900", hold)
			}
			if p := problems(); len(p) > 0 {
				t.Errorf("the page raised errors:\n%s", strings.Join(p, "\n"))
			}
		})
	}
}
