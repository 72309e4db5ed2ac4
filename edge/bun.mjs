// tickstream on Bun: bun edge/dist/bun.mjs serves on $HOST:$PORT
// (127.0.0.1:8787 unless they say otherwise). See edge/main.go.
import { makeFetch } from "./glue.mjs";

const serve = makeFetch(
  async () => WebAssembly.compile(await Bun.file(new URL("./tickstream.wasm", import.meta.url)).arrayBuffer()),
  (name) => process.env[name],
);

const server = Bun.serve({
  hostname: process.env.HOST ?? "127.0.0.1",
  port: Number(process.env.PORT ?? 8787),
  // Bun closes a connection idle for 10 s by default, which would cut a
  // stream between two events; streams are kept alive by heartbeats.
  idleTimeout: 0,
  fetch: serve,
});
console.log(`Listening on http://${server.hostname}:${server.port}/`);
