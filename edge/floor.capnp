# The floor worker (floor.mjs) in workerd, for the edge benchmark:
#   workerd serve edge/dist/floor.capnp --socket-addr http=127.0.0.1:8787
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [(name = "floor", worker = .floor)],
  sockets = [(name = "http", address = "127.0.0.1:8787", http = (), service = "floor")],
);

const floor :Workerd.Worker = (
  modules = [(name = "floor.mjs", esModule = embed "floor.mjs")],
  compatibilityDate = "2026-11-17",
);
