package handler

import (
	"bytes"
	_ "embed"
	"net/http"
	"time"
)

// The page and its assets, embedded so the handler needs no files at run
// time and the page needs nothing from outside the server.
var (
	//go:embed page/index.html
	pageHTML []byte
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

func (h *Handler) page(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Security-Policy", pagePolicy)
	w.Header().Set("Referrer-Policy", "no-referrer")
	serveAsset(w, r, "text/html; charset=utf-8", pageHTML)
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
