// follow.mjs opens an EventSource on each URL given and prints, one JSON
// line each, every event it receives and the moment it gives up, for
// local/clients_test.go. It exits once every source is closed, or after
// 15 s.
import { EventSource } from "eventsource";

const urls = process.argv.slice(2);
let open = urls.length;
for (const [i, url] of urls.entries()) {
  const es = new EventSource(url);
  const print = (what) => console.log(JSON.stringify({ source: i, ...what }));
  const onEvent = (ev) => print({ type: ev.type, id: ev.lastEventId, data: ev.data });
  for (const type of ["message", "tick", "done"]) es.addEventListener(type, onEvent);
  es.onerror = (err) => {
    if (es.readyState !== EventSource.CLOSED) return; // it reconnects by itself
    print({ closed: true, code: err.code ?? null });
    if (--open === 0) process.exit(0);
  };
}
setTimeout(() => {
  console.log(JSON.stringify({ timeout: true }));
  process.exit(1);
}, 15000);
