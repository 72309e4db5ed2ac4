# tickstream in workerd, Cloudflare Workers' runtime:
#   workerd serve edge/dist/workerd.capnp --socket-addr http=127.0.0.1:8787
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [(name = "tickstream", worker = .tickstream)],
  sockets = [(name = "http", address = "127.0.0.1:8787", http = (), service = "tickstream")],
);

const tickstream :Workerd.Worker = (
  modules = [
    (name = "worker.mjs", esModule = embed "worker.mjs"),
    (name = "glue.mjs", esModule = embed "glue.mjs"),
    (name = "wasm_exec.js", esModule = embed "wasm_exec.js"),
    (name = "tickstream.wasm", wasm = embed "tickstream.wasm"),
  ],
  compatibilityDate = "2026-11-17",
  bindings = [
    (name = "MAX_STREAM_DURATION", text = "15m"),
    (name = "MAX_STREAMS", text = "1000"),
  ],
);
