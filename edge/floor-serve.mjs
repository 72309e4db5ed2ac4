// The floor worker (floor.mjs) on Deno or Bun, on $HOST:$PORT, for the
// edge benchmark. Not part of tickstream.
import floor from "./floor.mjs";

const hostname = globalThis.Deno ? Deno.env.get("HOST") ?? "127.0.0.1" : process.env.HOST ?? "127.0.0.1";
const port = Number(globalThis.Deno ? Deno.env.get("PORT") ?? 8787 : process.env.PORT ?? 8787);
if (globalThis.Deno) {
  Deno.serve({ hostname, port }, floor.fetch);
} else {
  Bun.serve({ hostname, port, idleTimeout: 0, fetch: floor.fetch });
}
