// tickstream on Deno: deno run -A edge/dist/deno.mjs serves on $HOST:$PORT
// (127.0.0.1:8787 unless they say otherwise). See edge/main.go.
import { makeFetch } from "./glue.mjs";

const serve = makeFetch(
  () => WebAssembly.compile(Deno.readFileSync(new URL("./tickstream.wasm", import.meta.url))),
  (name) => Deno.env.get(name),
);

Deno.serve({
  hostname: Deno.env.get("HOST") ?? "127.0.0.1",
  port: Number(Deno.env.get("PORT") ?? 8787),
}, serve);
