"use strict";

// The live view of tickstream's page. Every URL is relative to the page, so
// the page works wherever the handler is mounted (at / or under a prefix).

const maxTicks = 50; // the list keeps the newest ticks only
const burstTotal = 100;

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

// runBurst reads one /stream/fast burst and closes its EventSource on "done",
// so the browser does not reconnect and start another burst.
function runBurst() {
  const button = $("burst");
  const progress = $("burst-progress");
  const state = $("burst-state");
  let count = 0;
  button.disabled = true;
  progress.value = `0 / ${burstTotal}`;
  state.textContent = "running";
  const source = new EventSource("stream/fast");
  const finish = (text) => {
    source.close();
    state.textContent = text;
    button.disabled = false;
  };
  source.onmessage = () => {
    count++;
    progress.value = `${count} / ${burstTotal}`;
  };
  source.addEventListener("done", () => finish("done"));
  source.onerror = () => finish("failed");
}

document.addEventListener("DOMContentLoaded", () => {
  $("burst").addEventListener("click", runBurst);
  watchTicks();
});
