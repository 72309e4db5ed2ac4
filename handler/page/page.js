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

document.addEventListener("DOMContentLoaded", () => {
  $("burst").addEventListener("click", runBurst);
  watchTicks();
});
