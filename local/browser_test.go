package main

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/tickstream/tickstream/handler"
	"github.com/tickstream/tickstream/internal/browsertest"
	"github.com/tickstream/tickstream/internal/proxytest"
	"github.com/tickstream/tickstream/internal/wiretest"
)

// The browser tests need Chromium. Where it is missing they fail with the
// command that installs it, unless this variable is set (CI never sets it).

// screenshotFile is the picture of the page the README shows; the browser
// test rewrites it when run with -update.
const screenshotFile = "../docs/page.png"

// pageOptions make the page's streams quick: ticks every 250ms, a burst of
// 100 events 10ms apart.
var pageOptions = []handler.Option{handler.WithInterval(250 * time.Millisecond), handler.WithFastDelay(10 * time.Millisecond)}

func text(ctx context.Context, t *testing.T, id string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#"+id)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// press clicks the button with id as a user does, by dispatching the click
// to it (its listeners run): a click at its coordinates can miss it, as the
// live list above it grows with every tick and moves it down.
func press(ctx context.Context, t *testing.T, id string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("`+id+`").click(); true`)); err != nil {
		t.Fatalf("pressing #%s: %v", id, err)
	}
}

// TestPageInBrowser loads the page from the runner in Chromium: it shows
// ticks, runs the burst to done, and after a server restart reconnects and
// continues the ids without a gap, all without a console error.
func TestPageInBrowser(t *testing.T) {
	ctx, problems := browsertest.New(t)
	first := startRunner(t, nil, pageOptions...)

	if err := chromedp.Do(ctx, chromedp.Navigate(first.url+"/")); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitFor(ctx, t, "three ticks", `Number(document.getElementById("received").textContent) >= 3`)
	browsertest.WaitFor(ctx, t, "the open state", `document.getElementById("state").textContent === "open"`)

	press(ctx, t, "burst")
	browsertest.WaitFor(ctx, t, "the burst's done", `document.getElementById("burst-state").textContent === "done"`)
	if got := text(ctx, t, "burst-progress"); got != "100 / 100" {
		t.Errorf("burst progress %q, want 100 / 100", got)
	}
	// The burst's timeline: one point per event, drawn under the page's CSP.
	browsertest.WaitFor(ctx, t, "the burst's timeline",
		`document.getElementById("burst-timeline").dataset.events === "100" && !document.getElementById("burst-timeline").hasAttribute("hidden")`)
	// The same burst answered to a POST, read with fetch.
	press(ctx, t, "burst-post")
	browsertest.WaitFor(ctx, t, "the POST burst's done", `document.getElementById("burst-state").textContent === "done (POST)"`)
	if got := text(ctx, t, "burst-progress"); got != "100 / 100" {
		t.Errorf("POST burst progress %q, want 100 / 100", got)
	}
	if got := text(ctx, t, "burst-verdict"); got != "live" {
		t.Errorf("POST burst verdict %q on a direct path, want live", got)
	}
	// The protocols the browser used, as Resource Timing says.
	browsertest.WaitFor(ctx, t, "the burst's protocol", `document.getElementById("burst-protocol").value === "http/1.1"`)
	if got := text(ctx, t, "page-protocol"); got != "http/1.1" {
		t.Errorf("page protocol %q, want http/1.1", got)
	}

	// Restart the server on the same address. Shutdown ends the stream
	// cleanly; the browser reconnects after the retry delay (1s) and sends
	// Last-Event-ID.
	lastBefore := text(ctx, t, "last-id")
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}
	startRunner(t, []string{"-addr", strings.TrimPrefix(first.url, "http://")}, pageOptions...)
	browsertest.WaitFor(ctx, t, "ticks after the restart",
		fmt.Sprintf(`Number(document.getElementById("last-id").textContent) >= %s + 3`, lastBefore))
	browsertest.WaitFor(ctx, t, "the open state after the restart", `document.getElementById("state").textContent === "open"`)
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
	ctx, problems := browsertest.New(t)
	mux := http.NewServeMux()
	mux.Handle("/sse/", http.StripPrefix("/sse", handler.New(pageOptions...)))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer srv.CloseClientConnections()

	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/sse/")); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitFor(ctx, t, "two ticks", `Number(document.getElementById("received").textContent) >= 2`)
	press(ctx, t, "burst")
	browsertest.WaitFor(ctx, t, "the burst's done", `document.getElementById("burst-state").textContent === "done"`)
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
			ctx, problems := browsertest.New(t)
			url := proxytest.Nginx(t, upstream, tt.conf)
			if err := chromedp.Do(ctx, chromedp.Navigate(url+"/")); err != nil {
				t.Fatal(err)
			}
			press(ctx, t, "burst")
			browsertest.WaitFor(ctx, t, "the burst's done", `document.getElementById("burst-state").textContent === "done"`)
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

// TestPageOverHTTP3InBrowser loads the page from a runner with -h3 in
// Chromium told to use QUIC for its origin and to trust its certificate:
// the page says it came over h3, and so did the burst, which came live.
func TestPageOverHTTP3InBrowser(t *testing.T) {
	certFile, keyFile, _ := writeTestCert(t)
	r := startRunner(t, []string{"-tls-cert", certFile, "-tls-key", keyFile, "-h3"}, pageOptions...)
	origin := strings.TrimPrefix(r.url, "http://")
	spki, err := spkiHash(certFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx, problems := browsertest.New(t,
		chromedp.Flag("disable-quic", false),
		chromedp.Flag("enable-quic", true),
		chromedp.Flag("origin-to-force-quic-on", origin),
		chromedp.Flag("ignore-certificate-errors-spki-list", spki))
	if err := chromedp.Do(ctx, chromedp.Navigate(httpsURL(r)+"/")); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitFor(ctx, t, "the open state", `document.getElementById("state").textContent === "open"`)
	if got := text(ctx, t, "page-protocol"); got != "h3" {
		t.Errorf("page protocol %q, want h3", got)
	}
	press(ctx, t, "burst")
	browsertest.WaitFor(ctx, t, "the burst's done", `document.getElementById("burst-state").textContent === "done"`)
	browsertest.WaitFor(ctx, t, "the burst's protocol", `document.getElementById("burst-protocol").value === "h3"`)
	if got := text(ctx, t, "burst-verdict"); got != "live" {
		t.Errorf("burst verdict %q over HTTP/3 on a direct path, want live", got)
	}
	if p := problems(); len(p) > 0 {
		t.Errorf("the page raised errors:\n%s", strings.Join(p, "\n"))
	}
}

// spkiHash returns the base64 SHA-256 of the public key of the PEM
// certificate in file, as Chromium's --ignore-certificate-errors-spki-list
// takes it.
func spkiHash(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return "", fmt.Errorf("%s: no PEM block", file)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:]), nil
}
