// The glue between a fetch runtime (workerd, Deno, Bun) and tickstream's
// handler compiled to WebAssembly (GOOS=js GOARCH=wasm). Its design (how a
// request becomes a handler call, where each request's bytes are queued,
// what wakes Go, what a client's departure cancels) is the doc comment of
// edge/main.go; the comments here say which part does what.
import "./wasm_exec.js";

// A POST body may bring at most this many bytes (the handler's 64 KiB); one
// more is read so that the handler sees it is too long and answers 413.
const maxBody = 64 << 10;

// bodyTimeout is how long a POST body may take to arrive (the handler's
// default): the handler then reads what came and a deadline error, and
// answers 408, as it does under the runner.
const bodyTimeoutMs = 5000;

// keepMs is the longest a request's run sleeps: it then looks whether Go's
// wake-up needs it (see run).
const keepMs = 1000;

// maxQueued is how many bytes a response may have waiting for its client
// (main.go's maxQueued): a client with more is not reading, and its stream
// ends.
const maxQueued = 2 << 20;

// settleEvery is how many chunks may be enqueued for a body before the
// count of its bytes that wait for the client is brought up to date
// (settle), unless that count may be over maxQueued: each update reads the
// body's desiredSize, a call into the runtime.
const settleEvery = 64;

// breakPollMs is how often a body that broke off looks whether its client
// has taken what was sent before the break, to fail then.
const breakPollMs = 20;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// Statuses whose responses have no body.
const noBody = new Set([101, 204, 205, 304]);

/**
 * makeFetch returns a fetch(request) function that serves tickstream's
 * routes from the wasm module, instantiated on the first request.
 * @param {() => Promise<WebAssembly.Module>} loadModule the compiled wasm
 * @param {(name: string) => string | undefined} env reads the settings
 *   MAX_STREAM_DURATION and MAX_STREAMS
 */
export function makeFetch(loadModule, env) {
  let started = null; // a promise of the running instance
  const exited = () => (started = null); // the next request starts another
  return async function fetch(request) {
    // The request's timer, set first: here, before any await, this code
    // runs in the request's own context (see run).
    const clock = { run: null, timer: null };
    const tick = () => {
      if (clock.run) clock.run();
      else clock.timer = setTimeout(tick, 10); // not yet served
    };
    clock.timer = setTimeout(tick, 0);
    started ??= start(loadModule, env, exited);
    let go;
    try {
      go = await started;
    } catch (err) {
      clearTimeout(clock.timer);
      started = null; // the next request tries again
      return unavailable(err.message);
    }
    return go.serve(request, clock);
  };
}

// unavailable answers a request that no instance can serve, saying why.
function unavailable(why) {
  return new Response(JSON.stringify({ error: why }) + "\n", {
    status: 503,
    headers: { "Content-Type": "application/json", "Retry-After": "1" },
  });
}

// start instantiates the module and runs its Go program, and returns the
// means to serve requests with it. If the program exits, every open
// response is broken off and onExit is called, once.
async function start(loadModule, env, onExit) {
  const module = await loadModule();
  const go = new globalThis.Go();
  const exchanges = new Map(); // by id: each request's state
  let nextId = 1;
  let depth = 0; // how many enter calls run now: Go runs if any do
  const woken = new Set(); // the exchanges Go had news for as it ran
  let wake = null; // Go's wake-up: {id, at, owner: the exchange whose timer runs for it}

  // What wakes Go: the two timeout imports, replaced (see main.go).
  const mem = () => go.mem;
  go.importObject.gojs["runtime.scheduleTimeoutEvent"] = (sp) => {
    sp >>>= 0;
    const id = go._nextCallbackTimeoutID++;
    const delay = mem().getUint32(sp + 8, true) + mem().getInt32(sp + 12, true) * 4294967296;
    wake = { id, at: Date.now() + delay, owner: null }; // owned once Go returns (enter)
    mem().setInt32(sp + 16, id, true);
  };
  go.importObject.gojs["runtime.clearTimeoutEvent"] = (sp) => {
    sp >>>= 0;
    const id = mem().getInt32(sp + 8, true);
    if (wake && wake.id === id) wake = null;
  };

  // adopt gives Go's wake-up to the live exchange x if no live request
  // owns it: x's run then times it.
  function adopt(x) {
    if (!wake || !x.live || wake.owner?.live) return;
    wake.owner = x;
  }

  // enter runs fn, which calls into Go, on behalf of exchange x. Once Go
  // has returned, it gives Go's wake-up to x if it has no live owner
  // (adopt), and sends what Go had news for, at once (send).
  // Go exits only while it runs, so this is where an exit shows.
  function enter(x, fn) {
    if (go.exited) return;
    depth++;
    try {
      return fn();
    } finally {
      if (--depth === 0) {
        if (go.exited) exit();
        else adopt(x);
        for (const y of woken) send(y);
        woken.clear();
      }
    }
  }

  // exit breaks off every open response of an instance whose program
  // exited, and lets the next request start another.
  let gone = false;
  function exit() {
    if (gone) return;
    gone = true;
    wake = null;
    for (const x of exchanges.values()) {
      x.failure = "the Go instance exited";
      x.ended = true;
      notify(x);
    }
    onExit();
  }

  // notify has x's news (a head, bytes, frames, the end) sent, once Go has
  // returned if Go runs.
  function notify(x) {
    if (depth > 0) woken.add(x);
    else send(x);
  }

  // The host's callbacks, which Go calls.
  let ready;
  const readyPromise = new Promise((resolve, reject) => (ready = { resolve, reject }));
  globalThis.tickstreamHost = {
    ready: () => ready.resolve(),
    log: (msg) => console.error(msg),
    fail: (msg) => ready.reject(new Error("tickstream: " + msg)),
    // head gives exchange id its response's status and headers: n bytes
    // of staging, each header's name and then value, each a length in
    // bytes (a uint32, little-endian) and its UTF-8 bytes.
    head(id, status, staging, n) {
      const x = exchanges.get(id);
      if (!x) return;
      const headers = new Headers();
      const view = new DataView(staging.buffer, staging.byteOffset, n);
      const text = (at, size) => decoder.decode(staging.subarray(at, at + size));
      for (let at = 0; at < n; ) {
        const nameSize = view.getUint32(at, true);
        const name = text(at + 4, nameSize);
        at += 4 + nameSize;
        const valueSize = view.getUint32(at, true);
        headers.append(name, text(at + 4, valueSize));
        at += 4 + valueSize;
      }
      x.head = { status, headers };
      notify(x);
    },
    // push queues a copy of the first n bytes of staging (Go's staging
    // array, or one of its own) for exchange id and returns how many bytes
    // wait; flushed says that the handler flushed it, which makes the
    // response a stream.
    push(id, staging, n, flushed) {
      const x = exchanges.get(id);
      if (!x) return 0;
      x.streamed ||= flushed;
      if (n > 0) x.queue.push(staging.slice(0, n));
      x.queued += n;
      notify(x);
      if (x.controller && x.queued + x.backlog > maxQueued) settle(x);
      return x.queued + x.backlog;
    },
    // plan takes the frames of exchange id's stream that Go built ahead
    // (plan.go's WriteStream): n bytes of staging, each frame a record of
    // the millisecond it is due (a float64), its length (a uint32), both
    // little-endian, and its bytes. The exchange's run sends them.
    plan(id, staging, n) {
      const x = exchanges.get(id);
      if (!x || x.stalled) return;
      x.streamed = true;
      const plan = staging.slice(0, n); // one copy; each frame a view of it
      const view = new DataView(plan.buffer);
      for (let at = 0; at < n; ) {
        const due = view.getFloat64(at, true);
        const size = view.getUint32(at + 8, true);
        at += 12;
        x.planned.push({ due, frame: plan.subarray(at, at + size) });
        at += size;
      }
      notify(x);
    },
    // unplan drops the planned frames of exchange id that are not sent
    // yet: its stream ends.
    unplan(id) {
      const x = exchanges.get(id);
      if (!x) return;
      dropPlan(x);
      notify(x);
    },
    // end ends exchange id's response: cleanly if failure is null, else
    // broken off, failure saying why.
    end(id, failure) {
      const x = exchanges.get(id);
      if (!x) return;
      x.ended = true;
      x.failure = failure || null;
      notify(x);
    },
  };
  globalThis.tickstreamConfig = {
    maxStreamDuration: env("MAX_STREAM_DURATION") ?? "",
    maxStreams: env("MAX_STREAMS") ?? "",
  };
  const instance = await WebAssembly.instantiate(module, go.importObject);
  go.run(instance); // runs main until it waits; it returns when the program exits
  // The promise run returned belongs to this request's context; resolving
  // it from another's, when the program exits, makes workerd warn. enter
  // watches go.exited instead.
  go._resolveExitPromise = () => {};
  await readyPromise;
  const exports = instance.exports;

  // callGo calls the function fn that Go exports (main.go) with args, and
  // then runs Go until every goroutine sleeps, so that what fn started
  // (a request's handler, a stream's end) runs.
  function callGo(fn, ...args) {
    fn(...args);
    if (!go.exited) go._resume();
  }

  // run is the timer of exchange x, and the only code that sets one for
  // it: workerd ties a timer to the request whose context sets it, and the
  // code that follows an await, or that another request's event runs (Go,
  // a callback of Go's), may run in that other request's context; a timer
  // it set would end with that request. run's first call is set by fetch
  // before any await, and run sets each next one itself, so x's timers
  // are x's. It runs Go if its wake-up is due, sends what x has to send,
  // ends x's body once it is done, and sets its next call: for x's next
  // planned frame, for Go's wake-up if x is its owner (any live
  // request whose run comes first takes an ownerless one), or else after
  // keepMs.
  function run(x) {
    if (!x.live) return;
    let now = Date.now();
    const w = wake;
    if (w && w.at <= now) {
      resume(x, w);
      now = Date.now(); // Go ran: in Deno and Bun the clock went on
    }
    if (x.stalled && !x.cancelled) {
      x.cancelled = true;
      enter(x, () => callGo(exports.tickstreamCancel, x.id, 1));
    }
    send(x, now);
    if (x.ending) end(x);
    if (!x.live) return;
    if (x.controller) x.begun = true;
    adopt(x);
    let at = now + keepMs;
    if (x.next < x.planned.length) at = Math.min(at, x.planned[x.next].due);
    if (wake && wake.owner === x) at = Math.min(at, wake.at);
    if (x.ending) at = now + (x.breaking || x.controller.desiredSize >= 0 ? 0 : breakPollMs);
    x.clock.timer = setTimeout(x.clock.run, Math.max(0, at - now));
  }

  // resume runs Go for its wake-up w, on behalf of exchange x, unless w
  // was cleared or set again since.
  function resume(x, w) {
    if (wake !== w) return;
    enter(x, () => {
      for (let tries = 0; wake === w && tries < 3; tries++) go._resume();
    });
  }

  function finish(x) {
    if (!x.live) return;
    x.live = false;
    clearTimeout(x.clock.timer); // a no-op in workerd outside x's context: run finds x done
    exchanges.delete(x.id);
    if (x.waiter) x.waiter(); // serve, waiting for a head
  }

  async function serve(request, clock) {
    let body = null;
    let late = false;
    if (request.body && request.method !== "GET" && request.method !== "HEAD") {
      ({ body, late } = await readBody(request));
    }
    if (gone) {
      clearTimeout(clock.timer);
      return unavailable("the Go instance exited");
    }
    const x = {
      id: nextId++,
      live: true,
      clock, // its timer, which calls run
      head: null,
      waiter: null, // serve's, while it waits for the head
      queue: [],
      queued: 0,
      ended: false,
      failure: null, // why the response broke off, if it did
      streamed: false,
      controller: null, // the body's, once it is a stream
      planned: [], // frames Go built ahead: {due (ms since the epoch), frame}
      next: 0, // the index in planned of the next frame to send
      backlog: 0, // bytes enqueued that the client may not have read (settle)
      sizes: [], // the sizes of the chunks enqueued, from the first that may wait
      stalled: false, // the client stopped reading
      cancelled: false, // Go was told so
      ending: false, // the body ends at x's next run (end)
      breaking: false, // the body, broken off, fails at its next end
      begun: false, // x's run has run since its body began
    };
    exchanges.set(x.id, x);
    clock.run = () => run(x);
    // The request's head, for Go's parseHead: the method, the URL and each
    // header's name and value, separated by NUL bytes (none of them can
    // hold one), then its body, written into Go's memory where Go's
    // tickstreamInbox says, for at most 3 bytes of UTF-8 a UTF-16 unit.
    let head = request.method + "\0" + request.url;
    for (const [name, value] of request.headers) head += "\0" + name + "\0" + value;
    const size = 3 * head.length + (body ? body.length : 0);
    const room = new Uint8Array(exports.mem.buffer, exports.tickstreamInbox(size) >>> 0, size);
    const { written } = encoder.encodeInto(head, room);
    if (body) room.set(body, written);
    enter(x, () => callGo(exports.tickstreamServe, x.id, written, body ? body.length : -1, late ? 1 : 0));
    if (!x.head && !x.ended && x.live) await new Promise((resolve) => (x.waiter = resolve));
    x.waiter = null;
    if (!x.head) {
      finish(x);
      return x.failure ? unavailable(x.failure) : new Response(null, { status: 502 });
    }
    const { status, headers } = x.head;
    if (noBody.has(status)) {
      finish(x);
      return new Response(null, { status, headers });
    }
    if (request.method === "HEAD" && !headers.has("Content-Length")) {
      // A stream's head: an empty body of no announced length, so that the
      // runtime adds no Content-Length: 0.
      finish(x);
      return new Response(new ReadableStream({ start: (c) => c.close() }), { status, headers });
    }
    if (request.method === "HEAD" || (x.ended && !x.streamed && !x.failure)) {
      // Answered at once, unflushed: the whole body is queued.
      const bytes = concat(x.queue);
      finish(x);
      return new Response(request.method === "HEAD" ? null : bytes, { status, headers });
    }
    const stream = new ReadableStream(
      {
        start(controller) {
          x.controller = controller;
          send(x);
        },
        cancel() {
          leave(x);
        },
      },
      // No pull and no size callbacks: each would cost a call from the
      // runtime into JavaScript per event. The queue counts chunks, and
      // settle counts their bytes.
      { highWaterMark: 0 },
    );
    return new Response(stream, { status, headers });
  }

  // send enqueues what x's body has to send now: the bytes Go pushed, and
  // the planned frames that are due, each as the floor of a stream costs,
  // one enqueue (a frame sent more than a millisecond late is stamped with
  // when it is sent); x's run sends the next when it is due. Once Go has
  // ended the response and nothing planned waits, the body ends: at once,
  // if it ends cleanly and x's run has run since it began (Bun gives a
  // stream that ends within its first read a Content-Length, as if it were
  // not a stream), else at x's next run (end). A head Go sent wakes serve.
  function send(x, now = Date.now()) {
    if (x.waiter && (x.head || x.ended)) x.waiter();
    const c = x.controller;
    if (!c || !x.live || x.ending) return;
    if (x.failure) dropPlan(x); // broken off: nothing more is sent
    const planned = x.planned;
    try {
      if (x.queue.length > 0) {
        enqueue(x, concat(x.queue));
        x.queue = [];
        x.queued = 0;
      }
      while (x.next < planned.length && planned[x.next].due <= now) {
        const { due, frame } = planned[x.next++];
        enqueue(x, now - due > 1 ? restamp(frame, due, now) : frame);
      }
    } catch {
      // The runtime ended the body without cancelling it (Deno, when its
      // client is gone): as if the client left.
      leave(x);
      return;
    }
    if (x.next > 0 && x.next === planned.length) dropPlan(x); // all sent
    if (x.sizes.length >= settleEvery || x.backlog > maxQueued) settle(x);
    if (x.backlog > maxQueued && !x.stalled) {
      // The client stopped reading: the stream ends after what waits, and
      // x's run tells Go.
      x.stalled = true;
      dropPlan(x);
    }
    if (x.planned.length > 0 || !x.ended) return;
    if (!x.failure && x.begun) {
      finish(x);
      c.close();
      return;
    }
    x.ending = true;
  }

  // end ends the body of x, at x's run: cleanly, or, if it broke off, by
  // failing it (the client's read fails, as a reset does), a run after the
  // runtime has taken the bytes sent before the break, so that it writes
  // them first.
  function end(x) {
    const c = x.controller;
    if (!x.failure) {
      finish(x);
      c.close();
      return;
    }
    if (!x.breaking) {
      x.breaking = c.desiredSize >= 0; // taken: it fails at the next run
      return;
    }
    finish(x);
    c.error(new Error("tickstream: " + x.failure));
  }

  // dropPlan drops x's planned frames that are not sent yet, if any.
  function dropPlan(x) {
    x.planned = [];
    x.next = 0;
  }

  // leave ends x's stream, and only its, when its client has left.
  function leave(x) {
    if (!x.live) return;
    enter(x, () => callGo(exports.tickstreamCancel, x.id, 0));
    finish(x);
  }

  // enqueue gives chunk to x's body.
  function enqueue(x, chunk) {
    x.controller.enqueue(chunk);
    x.sizes.push(chunk.byteLength);
    x.backlog += chunk.byteLength;
  }

  // settle finds how many of the bytes enqueued for x's body wait for its
  // client (x.backlog): the chunks that wait are the last ones enqueued,
  // and the body's queue counts them (minus its desiredSize, its
  // high-water mark being 0). Between settles x.backlog counts every byte
  // enqueued since, some of them taken already: it is never less than
  // what waits, so a count over maxQueued is settled before it is acted on.
  function settle(x) {
    const waiting = Math.max(0, -x.controller.desiredSize);
    const taken = x.sizes.length - waiting;
    if (taken <= 0) return;
    for (let i = 0; i < taken; i++) x.backlog -= x.sizes[i];
    x.sizes.splice(0, taken);
  }

  return { serve };
}

// readBody reads a request's body, at most maxBody and one bytes, and
// returns them, and whether the rest did not come within bodyTimeoutMs.
async function readBody(request) {
  const reader = request.body.getReader();
  const chunks = [];
  let size = 0;
  let timer;
  const timeout = new Promise((resolve) => (timer = setTimeout(() => resolve("late"), bodyTimeoutMs)));
  let late = false;
  let done = false;
  try {
    while (size <= maxBody) {
      const next = await Promise.race([reader.read(), timeout]);
      if (next === "late") {
        late = true;
        break;
      }
      if (next.done) {
        done = true;
        break;
      }
      chunks.push(next.value);
      size += next.value.length;
    }
  } finally {
    clearTimeout(timer);
    if (!done) reader.cancel().catch(() => {});
  }
  return { body: concat(chunks).subarray(0, maxBody + 1), late };
}

function concat(chunks) {
  if (chunks.length === 1) return chunks[0];
  let size = 0;
  for (const c of chunks) size += c.length;
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

// restamp moves the timestamp of frame, which was to be sent at the
// millisecond due, to now, when it is sent, and returns it. The handler
// stamps events as JavaScript's toISOString writes times (RFC 3339 in UTC,
// with milliseconds); a frame without due's stamp (a heartbeat, a done
// event, a test clock's event) is sent as it is. A frame sent within the
// second it was due has only its milliseconds rewritten.
export function restamp(frame, due, now) {
  const from = isoString(due);
  const at = indexOf(frame, from);
  if (at < 0) return frame;
  if (Math.floor(now / 1000) === Math.floor(due / 1000)) {
    const ms = now - Math.floor(now / 1000) * 1000;
    const digits = at + from.length - 4; // "sss" of "...ss.sssZ"
    frame[digits] = 48 + Math.floor(ms / 100);
    frame[digits + 1] = 48 + (Math.floor(ms / 10) % 10);
    frame[digits + 2] = 48 + (ms % 10);
    return frame;
  }
  const to = isoString(now);
  for (let i = 0; i < to.length; i++) frame[at + i] = to.charCodeAt(i);
  return frame;
}

// isoString returns new Date(ms).toISOString(), remembering the last two:
// the frames restamped together share their due time.
const isoMs = [NaN, NaN];
const isoText = ["", ""];
let isoLast = 0;
function isoString(ms) {
  if (isoMs[0] === ms) return isoText[0];
  if (isoMs[1] === ms) return isoText[1];
  isoLast ^= 1;
  isoMs[isoLast] = ms;
  return (isoText[isoLast] = new Date(ms).toISOString());
}

// indexOf returns where the ASCII string s first is in bytes, or -1.
function indexOf(bytes, s) {
  const first = s.charCodeAt(0);
  search: for (let at = bytes.indexOf(first); at >= 0 && at + s.length <= bytes.length; at = bytes.indexOf(first, at + 1)) {
    for (let i = 1; i < s.length; i++) {
      if (bytes[at + i] !== s.charCodeAt(i)) continue search;
    }
    return at;
  }
  return -1;
}
