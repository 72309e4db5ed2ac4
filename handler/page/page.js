"use strict";

// The live view of tickstream's page. Every URL is relative to the page, so
// the page works wherever the handler is mounted (at / or under a prefix).

const maxTicks = 50; // the list keeps the newest ticks only

const $ = (id) => document.getElementById(id);

function setState(state) {
  const el = $("state");
  el.dataset.state = state;
  el.textContent = state;
}

// watchTicks subscribes to /events. EventSource reconnects by itself when the
// stream ends or the server restarts, sending the last id back as
// Last-Event-ID, so the numbering continues without a gap. It gives up for
// good only when the server answers with an error (such as 503 when it
// serves as many streams as it may); then the page starts a new subscription
// after a pause.
const retryAfterErrorMs = 5000;
let received = 0;
let gaps = 0;
let lastId = null;

function watchTicks() {
  const source = new EventSource("events");
  setState("connecting");
  source.onopen = () => setState("open");
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) {
      setState("closed");
      setTimeout(watchTicks, retryAfterErrorMs);
    } else {
      setState("reconnecting");
    }
  };
  source.addEventListener("tick", (event) => {
    const tick = JSON.parse(event.data);
    if (lastId !== null && tick.id !== lastId + 1 && tick.id !== 1) {
      gaps++;
    }
    lastId = tick.id;
    received++;
    $("last-id").textContent = event.lastEventId;
    $("received").textContent = String(received);
    $("gaps").textContent = String(gaps);

    const item = document.createElement("li");
    item.dataset.id = String(tick.id);
    item.textContent = `#${tick.id}  ${tick.timestamp}  ${tick.message}`;
    const list = $("ticks");
    list.prepend(item);
    while (list.children.length > maxTicks) {
      list.lastElementChild.remove();
    }
  });
}

// pathVerdict judges how the burst's events reached the browser, as
// `go run ./check` does (check/timing.go, whose thresholds these are). An
// event's delay is its arrival minus its send time (the "ts" the server
// stamped), both counted from the first event, so the two clocks need not
// agree; the largest delay beyond the smallest is the longest the path held
// an event.
function pathVerdict(arrivals) {
  const [sent0, at0] = arrivals[0];
  const delays = arrivals.map(([sent, at]) => (at - at0) - (sent - sent0));
  const hold = Math.max(...delays) - Math.min(...delays);
  const verdict = hold < 100 ? "live" : hold < 1000 ? "batched" : "buffered";
  return { verdict, hold: Math.round(hold) };
}

function showVerdict(arrivals) {
  if (arrivals.length === 0) {
    return;
  }
  const { verdict, hold } = pathVerdict(arrivals);
  const out = $("burst-verdict");
  out.dataset.verdict = verdict;
  out.value = verdict;
  $("burst-hold").textContent = `largest hold ${hold} ms over ${arrivals.length} events`;
  $("burst-advice").hidden = verdict === "live";
  drawTimeline($("burst-timeline"), arrivals);
}

// drawTimeline draws each event's arrival (up) against its sending
// (across), both from the first event's, over the dashed diagonal where
// they are equal, as `go run ./check -report` draws its timelines: a live
// path follows the diagonal, a buffer released by size makes uneven steps,
// one released by a clock a staircase of equal treads. It uses SVG
// presentation attributes only, which the page's style policy allows.
function drawTimeline(svg, arrivals) {
  const ns = "http://www.w3.org/2000/svg";
  const [width, height, left, bottom, top, right] = [360, 240, 44, 30, 10, 10];
  const [sent0, at0] = arrivals[0];
  const points = arrivals.map(([sent, at]) => [sent - sent0, at - at0]);
  let span = 100;
  const biggest = Math.max(...points.flat());
  for (const mult of [2, 2.5, 2, 2, 2.5, 2, 2, 2.5, 2, 2]) {
    if (span >= biggest) {
      break;
    }
    span *= mult;
  }
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const x = (ms) => (left + (plotW * Math.max(ms, 0)) / span).toFixed(1);
  const y = (ms) => (top + plotH * (1 - Math.max(ms, 0) / span)).toFixed(1);
  const add = (name, attrs, text) => {
    const el = document.createElementNS(ns, name);
    for (const [k, v] of Object.entries(attrs)) {
      el.setAttribute(k, String(v));
    }
    if (text !== undefined) {
      el.textContent = text;
    }
    svg.append(el);
  };
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  add("rect", { x: left, y: top, width: plotW, height: plotH, fill: "none", stroke: "#999" });
  add("line", { x1: x(0), y1: y(0), x2: x(span), y2: y(span), stroke: "#999", "stroke-dasharray": "4 3" });
  for (let i = 0; i <= 4; i++) {
    const ms = (span * i) / 4;
    add("text", { x: x(ms), y: height - bottom + 12, "font-size": 10, "text-anchor": "middle", fill: "currentColor" }, String(ms / 1000));
    add("text", { x: left - 4, y: Number(y(ms)) + 3, "font-size": 10, "text-anchor": "end", fill: "currentColor" }, String(ms / 1000));
  }
  add("text", { x: left + plotW / 2, y: height - 4, "font-size": 11, "text-anchor": "middle", fill: "currentColor" }, "sent (s)");
  add("text", { x: 12, y: top + plotH / 2, "font-size": 11, "text-anchor": "middle", fill: "currentColor",
    transform: `rotate(-90 12 ${top + plotH / 2})` }, "arrived (s)");
  add("polyline", { fill: "none", stroke: "#2563eb", "stroke-width": 1.5,
    points: points.map(([s, a]) => `${x(s)},${y(a)}`).join(" ") });
  svg.dataset.events = String(points.length);
  svg.removeAttribute("hidden");
}

// runBurst reads one /stream/fast burst, timing each event's arrival, and
// closes its EventSource on "done", so the browser does not reconnect and
// start another burst.
function runBurst() {
  const button = $("burst");
  const progress = $("burst-progress");
  const state = $("burst-state");
  const arrivals = []; // [sent, arrived] in milliseconds
  const burstTotal = Number(button.dataset.count); // as the server sends it
  button.disabled = true;
  progress.value = `0 / ${burstTotal}`;
  state.textContent = "running";
  const source = new EventSource("stream/fast");
  const finish = (text) => {
    source.close();
    state.textContent = text;
    button.disabled = false;
    showVerdict(arrivals);
  };
  source.onmessage = (event) => {
    const arrived = performance.now();
    arrivals.push([Date.parse(JSON.parse(event.data).ts), arrived]);
    progress.value = `${arrivals.length} / ${burstTotal}`;
  };
  source.addEventListener("done", () => finish("done"));
  source.onerror = () => finish("failed");
}

// runPostBurst reads the same burst answered to a POST, as LLM token
// streams and MCP's Streamable HTTP are, and as some paths treat
// differently from a GET. EventSource cannot POST, so it reads the body with
// fetch and parses the events itself (LF-terminated lines, as tickstream
// writes them); its body is a string, so the request needs no CORS
// preflight.
async function runPostBurst() {
  const buttons = [$("burst"), $("burst-post")];
  const progress = $("burst-progress");
  const state = $("burst-state");
  const total = Number($("burst").dataset.count);
  const arrivals = []; // [sent, arrived] in milliseconds
  buttons.forEach((b) => { b.disabled = true; });
  progress.value = `0 / ${total}`;
  state.textContent = "running (POST)";
  let outcome = "failed (POST)";
  try {
    const resp = await fetch("stream/fast", {
      method: "POST",
      body: JSON.stringify({ count: total }),
      headers: { Accept: "text/event-stream" },
    });
    if (!resp.ok) {
      throw new Error(`status ${resp.status}`);
    }
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    let pending = "";
    let type = "";
    let data = [];
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        break;
      }
      pending += value;
      for (let i = pending.indexOf("\n"); i >= 0; i = pending.indexOf("\n")) {
        const line = pending.slice(0, i).replace(/\r$/, "");
        pending = pending.slice(i + 1);
        if (line !== "") {
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          const val = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "event") {
            type = val;
          } else if (field === "data") {
            data.push(val);
          }
          continue;
        }
        if (type === "done") {
          outcome = "done (POST)";
        } else if (data.length > 0) {
          arrivals.push([Date.parse(JSON.parse(data.join("\n")).ts), performance.now()]);
          progress.value = `${arrivals.length} / ${total}`;
        }
        type = "";
        data = [];
      }
    }
  } catch (err) {
    outcome = `failed (POST): ${err.message}`;
  }
  state.textContent = outcome;
  buttons.forEach((b) => { b.disabled = false; });
  showVerdict(arrivals);
}

// watchProtocols shows the protocol this browser used (Resource Timing's
// nextHopProtocol: http/1.1, h2 or h3) for the page and, as each ends, for
// the burst's streams: a path that offers HTTP/3 (Alt-Svc) has the browser
// switch to it after the first requests, and streams over HTTP/3 can fare
// otherwise. A browser that does not say leaves "(not known)".
function watchProtocols() {
  const [nav] = performance.getEntriesByType("navigation");
  if (nav && nav.nextHopProtocol) {
    $("page-protocol").value = nav.nextHopProtocol;
  }
  if (typeof PerformanceObserver === "undefined") {
    return;
  }
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if (new URL(entry.name).pathname.endsWith("/stream/fast")) {
        $("burst-protocol").value = entry.nextHopProtocol || "(not known)";
      }
    }
  }).observe({ type: "resource" });
}

document.addEventListener("DOMContentLoaded", () => {
  $("burst").addEventListener("click", runBurst);
  $("burst-post").addEventListener("click", runPostBurst);
  watchProtocols();
  watchTicks();
});
