// The floor of what a stream costs a fetch runtime: a plain JavaScript
// worker that writes /stream/fast's and /events' frames (the same bytes as
// tickstream's, but for the timestamps' instant) from JavaScript timers, one
// timer and one write per event, and nothing else. The edge benchmark
// (edge/bench_test.go) measures tickstream's WebAssembly build against it
// in the same runtime. Not part of tickstream.

const encoder = new TextEncoder();

function fastFrame(seq) {
  return `id: ${seq}\ndata: {"seq":${seq},"ts":"${new Date().toISOString()}"}\n\n`;
}

function tickFrame(id) {
  const retry = id === 1 ? "retry: 1000\n" : "";
  return `${retry}id: ${id}\nevent: tick\ndata: {"id":${id},"timestamp":"${new Date().toISOString()}","message":"Event #${id}"}\n\n`;
}

// stream answers with frame(i) for i from first, every period ms, count of
// them, then end (a last frame, or none).
function stream(first, count, period, frame, end) {
  let timer;
  const body = new ReadableStream({
    start(controller) {
      let i = 0;
      const next = () => {
        if (i === count) {
          if (end) controller.enqueue(encoder.encode(end));
          controller.close();
          return;
        }
        controller.enqueue(encoder.encode(frame(first + i)));
        i++;
        timer = setTimeout(next, period);
      };
      next();
    },
    cancel() {
      clearTimeout(timer);
    },
  });
  return new Response(body, {
    headers: { "Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff" },
  });
}

function duration(s, fallback) {
  const m = /^(\d+)(ms|s)$/.exec(s ?? "");
  if (!m) return fallback;
  return Number(m[1]) * (m[2] === "s" ? 1000 : 1);
}

export default {
  fetch(request) {
    const url = new URL(request.url);
    const q = url.searchParams;
    switch (url.pathname) {
      case "/health":
        return Response.json({ status: "healthy" });
      case "/stream/fast": {
        const count = Number(q.get("count") ?? 100);
        return stream(0, count, duration(q.get("delay"), 50), fastFrame, `id: ${count}\nevent: done\ndata: complete\n\n`);
      }
      case "/events":
        return stream(1, Number(q.get("count") ?? Infinity), duration(q.get("interval"), 1000), tickFrame, null);
    }
    return new Response("not found\n", { status: 404 });
  },
};
