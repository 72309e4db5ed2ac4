package handler

import (
	"bytes"
	_ "embed"
	"fmt"
	"html"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The page and its assets, embedded so the handler needs no files at run
// time and the page needs nothing from outside the server.
var (
	//go:embed page/index.html
	pageSource string
	//go:embed page/page.js
	pageJS []byte
	//go:embed page/page.css
	pageCSS []byte
)

// pagePolicy allows the page its own script, stylesheet and event streams,
// and nothing else: no inline code, no framing, no other origins.
const pagePolicy = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; " +
	"frame-ancestors 'none'"

// renderPage renders the page for h's settings: the tick interval, and the
// burst's size and pace, in place of the source's {{.Interval}},
// {{.FastDelay}} and {{.FastCount}}. (Not with html/template: its
// reflection keeps the linker from dropping unused methods, which made the
// WebAssembly build two and a half times as large.)
func (h *Handler) renderPage() []byte {
	return []byte(strings.NewReplacer(
		"{{.Interval}}", html.EscapeString(spokenDuration(h.interval)),
		"{{.FastDelay}}", html.EscapeString(spokenDuration(h.fastDelay)),
		"{{.FastCount}}", strconv.Itoa(defaultFastCount),
	).Replace(pageSource))
}

// spokenDuration writes d as the page says it: "1 s", "250 ms".
func spokenDuration(d time.Duration) string {
	switch {
	case d%time.Second == 0 && d != 0:
		return fmt.Sprintf("%d s", d/time.Second)
	case d%time.Millisecond == 0:
		return fmt.Sprintf("%d ms", d/time.Millisecond)
	}
	return d.String()
}

func (h *Handler) page(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Security-Policy", pagePolicy)
	w.Header().Set("Referrer-Policy", "no-referrer")
	serveAsset(w, r, "text/html; charset=utf-8", h.pageHTML)
}

func (h *Handler) pageScript(w http.ResponseWriter, r *http.Request) {
	serveAsset(w, r, "text/javascript; charset=utf-8", pageJS)
}

func (h *Handler) pageStyle(w http.ResponseWriter, r *http.Request) {
	serveAsset(w, r, "text/css; charset=utf-8", pageCSS)
}

// serveAsset serves an embedded file. http.ServeContent answers HEAD and
// Range requests; no-cache makes browsers revalidate, so a new build's page
// is never mixed with an old build's script.
func serveAsset(w http.ResponseWriter, r *http.Request, contentType string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}
