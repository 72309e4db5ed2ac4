// tickstream on Cloudflare Workers (and workerd): the Workers module
// format, with the wasm module beside it. See edge/main.go.
import { makeFetch } from "./glue.mjs";
import wasm from "./tickstream.wasm";

let serve;

export default {
  fetch(request, env) {
    serve ??= makeFetch(async () => wasm, (name) => env[name]);
    return serve(request);
  },
};
