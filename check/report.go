package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"html/template"
	"time"
)

// A point is one event of a timeline: when it was sent and when it
// arrived, both on the client's clock, from the request.
type point struct{ sent, arrived time.Duration }

// timeline returns the points of a probe's events. With the server's clock
// known, an event's send time is put on the client's clock, so a uniform
// lag shows as an offset from the diagonal; without it, the first event is
// taken as sent when it arrived.
func timeline(r probeResult, clk clockEstimate) []point {
	pts := make([]point, len(r.arrivals))
	for i, a := range r.arrivals {
		var sent time.Duration
		if clk.known {
			sent = a.sent.Add(-clk.offset).Sub(r.start.Round(0))
		} else {
			sent = r.arrivals[0].at + a.sent.Sub(r.arrivals[0].sent)
		}
		pts[i] = point{sent: sent, arrived: a.at}
	}
	return pts
}

// The drawing's size and margins, in pixels.
const (
	svgWidth, svgHeight = 360, 240
	svgLeft, svgBottom  = 44, 30
	svgTop, svgRight    = 10, 10
)

// drawTimeline draws pts as an SVG: each event's arrival (up) against its
// sending (across), over the dashed diagonal where they are equal. A live
// stream follows the diagonal; a buffer released by size makes uneven
// steps, one released by a clock a staircase of equal treads; a lag lifts
// the whole line; a held tail lifts it by one gap. It uses presentation
// attributes only, so it needs no style and no script.
func drawTimeline(title string, pts []point) string {
	var b bytes.Buffer
	span := time.Duration(0)
	for _, p := range pts {
		span = max(span, p.sent, p.arrived)
	}
	span = niceSpan(span)
	plotW, plotH := svgWidth-svgLeft-svgRight, svgHeight-svgTop-svgBottom
	x := func(d time.Duration) float64 { return svgLeft + float64(plotW)*float64(max(d, 0))/float64(span) }
	y := func(d time.Duration) float64 { return svgTop + float64(plotH)*(1-float64(max(d, 0))/float64(span)) }
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="%s">`+"\n",
		svgWidth, svgHeight, svgWidth, svgHeight, template.HTMLEscapeString(title))
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="#fff" stroke="#999"/>`+"\n", svgLeft, svgTop, plotW, plotH)
	fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#999" stroke-dasharray="4 3"/>`+"\n", x(0), y(0), x(span), y(span))
	for i := 0; i <= 4; i++ {
		d := span * time.Duration(i) / 4
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="10" text-anchor="middle" fill="#333">%s</text>`+"\n", x(d), svgHeight-svgBottom+12, seconds(d))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-size="10" text-anchor="end" fill="#333">%s</text>`+"\n", svgLeft-4, y(d)+3, seconds(d))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" text-anchor="middle" fill="#333">sent (s)</text>`+"\n", svgLeft+plotW/2, svgHeight-4)
	fmt.Fprintf(&b, `<text x="12" y="%d" font-size="11" text-anchor="middle" fill="#333" transform="rotate(-90 12 %d)">arrived (s)</text>`+"\n", svgTop+plotH/2, svgTop+plotH/2)
	if len(pts) > 0 {
		b.WriteString(`<polyline fill="none" stroke="#36c" stroke-width="1.5" points="`)
		for i, p := range pts {
			if i > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "%.1f,%.1f", x(p.sent), y(p.arrived))
		}
		b.WriteString(`"/>` + "\n")
		for _, p := range pts {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="2" fill="#36c"/>`+"\n", x(p.sent), y(p.arrived))
		}
	}
	b.WriteString("</svg>")
	return b.String()
}

// A streamSeries is one read of stream mode, drawn as a line of its own.
type streamSeries struct {
	name string
	response
}

// seriesColors are the lines' colours: the path's read, then the
// comparison's.
var seriesColors = []string{"#36c", "#d62"}

// drawArrivals draws stream mode's reads on one timeline: how many records
// each had readable (up) against the time from its request (across), a
// step a release. A live path follows the comparison's steps; a buffer
// turns many small steps into few tall ones, late; a held response is one
// step at its end.
func drawArrivals(title string, series []streamSeries) string {
	var b bytes.Buffer
	span, most := time.Duration(0), 1
	for _, s := range series {
		if n := len(s.events); n > 0 {
			span = max(span, s.events[n-1].at)
			most = max(most, n)
		}
	}
	span = niceSpan(span)
	plotW, plotH := svgWidth-svgLeft-svgRight, svgHeight-svgTop-svgBottom
	x := func(d time.Duration) float64 { return svgLeft + float64(plotW)*float64(max(d, 0))/float64(span) }
	y := func(n int) float64 { return svgTop + float64(plotH)*(1-float64(n)/float64(most)) }
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="%s">`+"\n",
		svgWidth, svgHeight, svgWidth, svgHeight, template.HTMLEscapeString(title))
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="#fff" stroke="#999"/>`+"\n", svgLeft, svgTop, plotW, plotH)
	for i := 0; i <= 4; i++ {
		d := span * time.Duration(i) / 4
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="10" text-anchor="middle" fill="#333">%s</text>`+"\n", x(d), svgHeight-svgBottom+12, seconds(d))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-size="10" text-anchor="end" fill="#333">%d</text>`+"\n", svgLeft-4, y(most)+3, most)
	fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-size="10" text-anchor="end" fill="#333">0</text>`+"\n", svgLeft-4, y(0)+3)
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" text-anchor="middle" fill="#333">from the request (s)</text>`+"\n", svgLeft+plotW/2, svgHeight-4)
	fmt.Fprintf(&b, `<text x="12" y="%d" font-size="11" text-anchor="middle" fill="#333" transform="rotate(-90 12 %d)">readable</text>`+"\n", svgTop+plotH/2, svgTop+plotH/2)
	for k, s := range series {
		color := seriesColors[k%len(seriesColors)]
		// The legend sits at the bottom right, which lines that climb from
		// the bottom left reach last.
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="10" text-anchor="end" fill="%s">%s</text>`+"\n",
			svgLeft+plotW-6, svgTop+plotH-8-12*(len(series)-1-k), color, template.HTMLEscapeString(s.name))
		if len(s.events) == 0 {
			continue
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%.1f,%.1f`, color, x(0), y(0))
		for i, e := range s.events {
			fmt.Fprintf(&b, " %.1f,%.1f %.1f,%.1f", x(e.at), y(i), x(e.at), y(i+1))
		}
		b.WriteString(`"/>` + "\n")
	}
	b.WriteString("</svg>")
	return b.String()
}

// niceSpan rounds d up to a span whose quarters read well: 1, 2 or 5
// times a power of ten of milliseconds, four times over.
func niceSpan(d time.Duration) time.Duration {
	step := 25 * time.Millisecond
	for _, mult := range []time.Duration{2, 2, 5, 2, 2, 5, 2, 2, 5, 2} {
		if 4*step >= d {
			break
		}
		step *= mult
	}
	return 4 * step
}

// seconds writes d in seconds with no more digits than it needs.
func seconds(d time.Duration) string {
	return fmt.Sprintf("%g", d.Round(time.Millisecond).Seconds())
}

// reportStyle is the page's one stylesheet, allowed by its hash in the
// page's Content-Security-Policy, which allows nothing else.
const reportStyle = `body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}td,th{padding:.2em .6em;text-align:left;vertical-align:top}
.fail{color:#b00;font-weight:bold}.ok{color:#070}figure{display:inline-block;margin:0 1em 1em 0}
figcaption{font-size:12px;max-width:360px}`

var reportPage = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src '{{.StyleHash}}'">
<title>tickstream check: {{.Report.URL}}</title>
<style>{{.Style}}</style>
</head>
<body>
<h1>What the path does to event streams</h1>
<p>{{with .Report.Method}}{{.}} {{end}}{{.Report.URL}}{{with .Report.Compare}}, compared with {{.}}{{end}}{{with .Report.RedirectedFrom}} (redirected from {{.}}){{end}}; proxy: {{.Report.Proxy}}{{with .Report.Software}}; the responses show {{range $i, $s := .}}{{if $i}}, {{end}}{{$s}}{{end}}{{end}}</p>
<p class="{{if .Report.OK}}ok{{else}}fail{{end}}">{{if .Report.OK}}Streams reach this client live.{{else}}The path breaks live streaming.{{end}}</p>
<table>
<tr><th></th><th>check</th><th>verdict</th><th>what was seen, and the fix</th></tr>
{{range .Report.Checks}}<tr><td class="{{if .OK}}ok{{else}}fail{{end}}">{{if .OK}}ok{{else}}FAIL{{end}}</td><td>{{.Name}}</td><td>{{.Verdict}}</td><td>{{.Detail}}{{with .Fix}}<br>fix: {{.}}{{end}}</td></tr>
{{end}}</table>
<h2>Timelines</h2>
{{if eq .Report.Mode "stream"}}<p>How many records each read had readable, against the time from its request: a step a release. A live path climbs with the comparison, step for step; a buffer turns many small steps into few tall, late ones; a held response is one step at its end.</p>
{{else}}<p>Each event's arrival against its sending. Live events follow the dashed diagonal. A buffer released by size makes uneven steps, one released by a clock a staircase of equal treads; a lag lifts the whole line; a compressor that keeps each event's tail lifts it by one gap.</p>
{{end}}{{range .Figures}}<figure>{{.SVG}}<figcaption>{{.Caption}}</figcaption></figure>
{{end}}</body>
</html>
`))

// A figure is one probe's timeline in the report.
type figure struct {
	SVG     template.HTML
	Caption string
}

// renderReport writes rep as a self-contained HTML page: the findings, and
// a timeline for every probe.
func renderReport(rep Report) []byte {
	sum := sha256.Sum256([]byte(reportStyle))
	data := struct {
		Report    Report
		Style     template.CSS
		StyleHash string
		Figures   []figure
	}{Report: rep, Style: template.CSS(reportStyle), StyleHash: "sha256-" + base64.StdEncoding.EncodeToString(sum[:])}
	if len(rep.streams) > 0 {
		caption := "each read's records as they became readable: " + rep.streams[0].name
		if len(rep.streams) > 1 {
			caption += " (blue) beside " + rep.streams[1].name + " (orange)"
		}
		data.Figures = append(data.Figures, figure{
			SVG:     template.HTML(drawArrivals("records readable over time", rep.streams)), //nolint:gosec // drawn here, its text escaped
			Caption: caption,
		})
	}
	for _, r := range rep.probes {
		if len(r.arrivals) == 0 {
			continue
		}
		caption := fmt.Sprintf("%s: %s, %s", r.name, r.probe, analyze(r.arrivals).summary())
		if r.encoding != "" {
			caption += ", " + r.encoding
		}
		data.Figures = append(data.Figures, figure{
			SVG:     template.HTML(drawTimeline(r.name, timeline(r, rep.clock))), //nolint:gosec // drawn here, its text escaped
			Caption: caption,
		})
	}
	var b bytes.Buffer
	if err := reportPage.Execute(&b, data); err != nil {
		panic(err) // the template and its data are the program's own
	}
	return b.Bytes()
}
