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

// guardMs is the longest a pump with nothing planned sleeps without
// looking: its own timer, so that no request ever waits only on another's
// work.
const guardMs = 2000;

// maxQueued is how many bytes a response may have waiting for its client
// (main.go's maxQueued): a client with more is not reading, and its stream
// ends.
const maxQueued = 2 << 20;

// breakPollMs is how often a body that broke off looks whether its client
// has taken what was sent before the break, to fail then.
const breakPollMs = 20;

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
    started ??= start(loadModule, env, exited);
    let go;
    try {
      go = await started;
    } catch (err) {
      started = null; // the next request tries again
      return unavailable(err.message);
    }
    return go.serve(request);
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
  let current = null; // the exchange whose code runs Go now
  let wake = null; // Go's wake-up: {id, at, owners: the exchanges whose timers are set for it}

  // What wakes Go: the two timeout imports, replaced (see main.go).
  const mem = () => go.mem;
  go.importObject.gojs["runtime.scheduleTimeoutEvent"] = (sp) => {
    sp >>>= 0;
    const id = go._nextCallbackTimeoutID++;
    const delay = mem().getUint32(sp + 8, true) + mem().getInt32(sp + 12, true) * 4294967296;
    wake = { id, at: Date.now() + delay, owners: new Set() };
    arm();
    mem().setInt32(sp + 16, id, true);
  };
  go.importObject.gojs["runtime.clearTimeoutEvent"] = (sp) => {
    sp >>>= 0;
    const id = mem().getInt32(sp + 8, true);
    if (wake && wake.id === id) wake = null; // its timer finds it gone
  };

  // arm sets a timer for Go's wake-up in the context of the code running
  // now, whose exchange becomes one of its owners. The first owner's timer
  // to fire resumes Go, which then asks for its next wake-up; the others
  // find theirs gone and do nothing.
  function arm() {
    const w = wake;
    if (!w) return;
    const owner = current;
    if (owner) w.owners.add(owner);
    setTimeout(() => {
      if (wake !== w) return; // cleared, or set again since
      enter(owner, () => {
        for (let tries = 0; wake === w && tries < 3; tries++) go._resume();
      });
    }, Math.max(0, w.at - Date.now()));
  }

  // owned reports whether a live request has a timer set for Go's wake-up.
  function owned() {
    for (const x of wake.owners) if (x.live) return true;
    return false;
  }

  // enter runs fn, which calls into Go, on behalf of exchange x (null for
  // none), and afterwards makes sure Go's wake-up has a live owner. Go
  // exits only while it runs, so this is where an exit shows.
  function enter(x, fn) {
    if (go.exited) return;
    const before = current;
    current = x;
    try {
      return fn();
    } finally {
      current = before;
      if (go.exited) exit();
      else if (wake && !owned()) handOver();
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
      wakePump(x);
    }
    onExit();
  }

  // handOver finds Go's wake-up a new owner: the first waiting pump, woken
  // at once to set the timer in its own context.
  function handOver() {
    for (const x of exchanges.values()) {
      if (x.waiter) {
        wakePump(x);
        return;
      }
    }
  }

  function wakePump(x) {
    const resolve = x.waiter;
    if (resolve) {
      x.waiter = null;
      resolve();
    }
  }

  // The host's callbacks, which Go calls.
  let ready;
  const readyPromise = new Promise((resolve, reject) => (ready = { resolve, reject }));
  globalThis.tickstreamHost = {
    ready: () => ready.resolve(),
    log: (msg) => console.error(msg),
    fail: (msg) => ready.reject(new Error("tickstream: " + msg)),
    head(id, status, pairs) {
      const x = exchanges.get(id);
      if (!x) return;
      const headers = new Headers();
      for (let i = 0; i + 1 < pairs.length; i += 2) headers.append(pairs[i], pairs[i + 1]);
      x.head = { status, headers };
      wakePump(x);
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
      wakePump(x);
      return x.queued + x.backlog;
    },
    // plan takes the frames of exchange id's stream that Go built ahead
    // (plan.go's WriteStream): n bytes of staging, each frame a record of
    // the millisecond it is due (a float64), its length (a uint32), both
    // little-endian, and its bytes. The exchange's own timers send them.
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
      wakePump(x);
    },
    // unplan drops the planned frames of exchange id that are not sent
    // yet: its stream ends.
    unplan(id) {
      const x = exchanges.get(id);
      if (!x) return;
      x.planned = [];
      x.next = 0;
      wakePump(x);
    },
    // end ends exchange id's response: cleanly if failure is "", else
    // broken off, failure saying why.
    end(id, failure) {
      const x = exchanges.get(id);
      if (!x) return;
      x.ended = true;
      x.failure = failure || null;
      wakePump(x);
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

  // wait sleeps the pump of x until Go has news for it; then, if no live
  // request has a timer set for Go's wake-up, x sets one in its context.
  async function wait(x) {
    guard(x);
    await new Promise((resolve) => {
      x.waiter = resolve;
    });
    x.waiter = null;
    if (x.live && wake && !owned()) {
      const before = current;
      current = x;
      arm();
      current = before;
    }
  }

  // guard makes sure that x has a timer of its own while it waits, so that
  // no request ever waits only on another's work (workerd ends such a
  // request as hung): the timer that sends its next planned frame, or else
  // its guard, which wakes its pump every guardMs.
  function guard(x) {
    if (!x.sender) {
      x.guard ??= setInterval(() => wakePump(x), guardMs);
    } else if (x.guard) {
      clearInterval(x.guard);
      x.guard = null;
    }
  }

  function finish(x) {
    if (!x.live) return;
    x.live = false;
    clearInterval(x.guard);
    wakePump(x); // to see that it is done
    exchanges.delete(x.id);
    if (wake && wake.owners.delete(x) && !owned()) handOver();
  }

  async function serve(request) {
    if (gone) return unavailable("the Go instance exited");
    let body = null;
    let late = false;
    if (request.body && request.method !== "GET" && request.method !== "HEAD") {
      ({ body, late } = await readBody(request));
    }
    const x = {
      id: nextId++,
      live: true,
      head: null,
      queue: [],
      queued: 0,
      ended: false,
      failure: null, // why the response broke off, if it did
      streamed: false,
      waiter: null,
      guard: null, // the timer of its own while nothing planned waits (guard)
      controller: null, // the body's, once it is a stream
      planned: [], // frames Go built ahead: {due (ms since the epoch), frame}
      next: 0, // the index in planned of the next frame to send
      sender: null, // the timer that sends the next planned frame
      backlog: 0, // bytes enqueued that the client has not read
      sizes: [], // the sizes of the chunks enqueued, from the first that may wait
      stalled: false, // the client stopped reading
      done: false, // the body has ended, or is ending
      broken: false, // the body has failed
    };
    exchanges.set(x.id, x);
    const pairs = [];
    for (const [name, value] of request.headers) pairs.push(name, value);
    enter(x, () => globalThis.tickstreamServe(x.id, request.method, request.url, pairs, body, late));
    while (!x.head && !x.ended) await wait(x);
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
          pump(x);
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

  // pump sends x's response body, in x's own context: it sends what can
  // go now, then sleeps until Go has news for it (bytes it pushed, frames
  // it planned, the end), while x's timer sends each planned frame when it
  // is due.
  async function pump(x) {
    while (send(x)) await wait(x);
  }

  // send enqueues what x's body has to send now: the bytes Go pushed, and
  // the planned frames that are due, each as the floor of a stream costs,
  // one timer and one enqueue (a frame sent more than a millisecond late is
  // stamped with when it is sent), with a timer set, in x's context, for
  // the next. It ends the body once Go has ended it and nothing planned
  // waits, and reports whether the body goes on.
  function send(x) {
    if (x.done) return false;
    const c = x.controller;
    if (x.failure) {
      x.planned = []; // broken off: nothing more is sent
      x.next = 0;
    }
    const now = Date.now();
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
      return false;
    }
    if (x.next === planned.length) {
      x.planned = [];
      x.next = 0;
    }
    settle(x);
    if (x.backlog > maxQueued && !x.stalled) {
      // The client stopped reading: the stream ends after what waits.
      x.stalled = true;
      x.planned = [];
      x.next = 0;
      enter(x, () => globalThis.tickstreamCancel(x.id, true));
    }
    if (x.planned.length > 0) {
      x.sender ??= setTimeout(() => {
        x.sender = null;
        send(x);
      }, x.planned[x.next].due - now);
    }
    if (x.planned.length > 0 || !x.ended) {
      guard(x);
      return true;
    }
    x.done = true;
    // A turn later: Bun gives a stream that ends within its first read a
    // Content-Length, as if it were not a stream.
    setTimeout(() => {
      finish(x);
      if (!x.failure) c.close();
      else breakOff(x);
    }, 0);
    return false;
  }

  // leave ends x's stream, and only its, when its client has left.
  function leave(x) {
    x.done = true;
    clearTimeout(x.sender);
    enter(x, () => globalThis.tickstreamCancel(x.id, false));
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
  // high-water mark being 0).
  function settle(x) {
    const waiting = Math.max(0, -x.controller.desiredSize);
    const taken = x.sizes.length - waiting;
    if (taken <= 0) return;
    for (let i = 0; i < taken; i++) x.backlog -= x.sizes[i];
    x.sizes.splice(0, taken);
  }

  // breakOff fails the body of x, once, a turn after the runtime has taken
  // its last bytes (so that it writes them first): the client's read
  // fails, as a reset does. It looks every breakPollMs until then.
  function breakOff(x) {
    if (x.broken) return;
    if (x.controller.desiredSize < 0) {
      setTimeout(() => breakOff(x), breakPollMs);
      return;
    }
    x.broken = true;
    setTimeout(() => x.controller.error(new Error("tickstream: " + x.failure)), 0);
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
// event, a test clock's event) is sent as it is.
export function restamp(frame, due, now) {
  const from = isoString(due);
  const at = indexOf(frame, from);
  if (at < 0) return frame;
  const to = isoString(now);
  for (let i = 0; i < to.length; i++) frame[at + i] = to.charCodeAt(i);
  return frame;
}

// isoString returns new Date(ms).toISOString(), remembering the last two:
// the frames restamped together share their due and send times.
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
