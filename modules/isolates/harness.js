// subgate's isolate harness: the module every isolate process starts with. It waits on stdin
// for one assignment line (JSON) naming the deployment's code, its envs and permissions, loads
// the code, and serves it on a private unix socket. A process started ahead of need (a spare)
// has already paid the runtime's startup when its assignment arrives.
//
// Assignment: {"nonce", "module", "envs", "net", "loop_tag"}
// Reports on stdout, prefixed with the nonce so user code cannot forge them:
//   "<nonce> ready"            serving
//   "<nonce> failed <message>" the code threw before serving, or served nothing
// Both user styles work: Deno.serve(handler | options) and `export default { fetch }`.

const realServe = Deno.serve;
const realFetch = globalThis.fetch;
let userHandler = null;
let userOnListen = null;

// Listen at once on the socket subgate named (argument 1), while the permissions still allow
// it: a spare is then ready to serve the moment its code arrives. User code is loaded after the
// permissions are narrowed, so even its top-level code runs with the final set. Requests
// arrive only after the "ready" report.
function clientUrl(request) {
  // The request as the relay's client made it: scheme from x-forwarded-proto, host from Host
  // (which subgate sets to x-forwarded-host). Own property: the native request stays intact.
  const url = new URL(request.url);
  const scheme = request.headers.get("x-forwarded-proto") === "http" ? "http" : "https";
  const host = request.headers.get("host") ?? "localhost";
  return `${scheme}://${host}${url.pathname}${url.search}`;
}

await new Promise((listening) => {
  realServe({
    path: Deno.args[0],
    onListen: listening,
    onError(error) {
      console.error("uncaught exception in the request handler:", error);
      return new Response("Internal Server Error\n", { status: 500 });
    },
  }, (request, info) => {
    Object.defineProperty(request, "url", { value: clientUrl(request), configurable: true });
    return userHandler(request, info);
  });
});

async function readAssignment() {
  const reader = Deno.stdin.readable.getReader();
  const decoder = new TextDecoder();
  let text = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
    const newline = text.indexOf("\n");
    if (newline >= 0) {
      text = text.slice(0, newline);
      break;
    }
  }
  reader.releaseLock();
  if (!text) Deno.exit(0); // subgate went away before giving us work
  return JSON.parse(text);
}

const assignment = await readAssignment();
const report = (line) => Deno.stdout.writeSync(new TextEncoder().encode(`${assignment.nonce} ${line}\n`));

for (const [name, value] of Object.entries(assignment.envs ?? {})) Deno.env.set(name, String(value));

// Requests this isolate makes carry its loop tag, so subgate can refuse a request that an
// isolate sends back to its own deployment (LOOP_DETECTED).
globalThis.fetch = (input, init) => {
  const request = new Request(input, init);
  request.headers.set("x-subgate-loop", assignment.loop_tag);
  return realFetch(request);
};

Deno.serve = function serve(...args) {
  const handler = args.find((arg) => typeof arg === "function") ?? args[0]?.handler;
  if (typeof handler !== "function") throw new TypeError("Deno.serve: a handler function is required");
  if (userHandler) throw new Error("Deno.serve: this isolate already serves a handler");
  userHandler = handler;
  const options = typeof args[0] === "object" && args[0] !== null ? args[0] : {};
  userOnListen = typeof options.onListen === "function" ? options.onListen : null;
  const finished = new Promise(() => {});
  return {
    finished,
    addr: { transport: "tcp", hostname: "0.0.0.0", port: 443 },
    shutdown: async () => {},
    ref() {},
    unref() {},
    [Symbol.asyncDispose]: async () => {},
  };
};

Deno.permissions.revokeSync({ name: "write" });
if (assignment.net === false) Deno.permissions.revokeSync({ name: "net" });

try {
  const mod = await import(assignment.module);
  const fetchExport = mod?.default?.fetch;
  if (!userHandler && typeof fetchExport === "function") {
    userHandler = (request, info) => fetchExport.call(mod.default, request, info);
  }
  if (!userHandler) throw new Error("the module neither called Deno.serve() nor exported default { fetch }");
} catch (error) {
  console.error("uncaught exception while loading the deployment:", error);
  report(`failed ${String(error?.message ?? error).replaceAll("\n", " ").slice(0, 500)}`);
  Deno.exit(1);
}

if (userOnListen) {
  try {
    userOnListen({ transport: "tcp", hostname: "0.0.0.0", port: 443 });
  } catch (error) {
    console.error(error);
  }
}
report("ready");
