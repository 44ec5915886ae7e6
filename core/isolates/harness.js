// subgate's isolate harness: the module every isolate process starts with. It waits on stdin
// for one assignment line (JSON) naming the deployment's code, its envs and permissions, loads
// the code, and serves it on a private unix socket. A process started ahead of need (a spare)
// has already paid the runtime's startup when its assignment arrives.
//
// Assignment: {"nonce", "module", "envs", "net", "loop_tag", "own_hosts", "cluster_timeout_ms"}
// Reports on stdout, prefixed with the nonce so user code cannot forge them:
//   "<nonce> ready"            serving
//   "<nonce> failed <message>" the code threw before serving, or served nothing
//   "<nonce> cluster <json>"   a cluster message (core/isolates/cluster_hub.h)
//   "<nonce> pong <seq>"       the answer to {"op":"ping","seq":N} (cpu_block_limit's watchdog)
//   "<nonce> log <level> [<request id>] <json>"  a console call of user code (debug|info|warn|
//                              error; the message as a JSON string), or an unhandled rejection
//                              (error); the x-request-id of the request whose handler made the
//                              call (however deep in its promises), absent outside one
//   "<nonce> uncaught <json>"  an uncaught exception (the message as a JSON string); exits next
// What user code writes to stdout and stderr itself stays raw output (logged as info / error).
// After the assignment, stdin carries cluster deliveries and results and the supervisor's pings,
// one JSON per line.
// Both user styles work: Deno.serve(handler | options) and `export default { fetch }`.
// User code also gets `globalThis.subgate`, the cluster API (docs/cluster.md).

// Two things the harness needs come from Deno's own internals when this Deno has them, and from
// its Node.js compatibility modules otherwise: a request's context carried through its promises
// (V8's continuation-preserved data, on which Deno's AsyncVariable and node:async_hooks'
// AsyncLocalStorage are built) and console formatting (the console's own inspectArgs, what
// `deno run` prints). Importing node:async_hooks and node:util loads and starts dozens of Node.js
// polyfill modules: about 3 MiB more in every isolate, a sixth of an idle one
// (docs/performance.md, "Isolates per GiB"). User code that imports them still gets them; the
// test that the harness loads neither is tests/integration/test_isolate_memory.py.
const denoInternals = Deno[Deno.internal] ?? {};
const getAsyncContext = denoInternals.core?.getAsyncContext;
const setAsyncContext = denoInternals.core?.setAsyncContext;
const inspectArgs = denoInternals.inspectArgs;
const format = typeof inspectArgs === "function"
  ? (...args) => inspectArgs(args, { colors: false })
  : (await import("node:util")).format;

const realServe = Deno.serve;
const realFetch = globalThis.fetch;
// The request whose handler runs, however deep in its promises: its loop count (CDN-Loop hops,
// core/ingress/cdn_loop.h) for the fetches it makes, and its id (subgate's x-request-id) for the
// console calls it makes; undefined outside a handler (top-level code, timers set up there).
// The context data is one object whose properties are AsyncVariables' entries (Deno keys them
// by a number per variable, and each variable that is entered copies the object's own
// properties into a new one): the harness adds its own entry under a symbol, so it follows into
// the AsyncLocalStorage runs of user code too. Not Deno's AsyncVariable itself: its enter() puts
// every value in a WeakMap under a new key object, whose ephemeron entries the GC pays for;
// per request that cost the isolate about 1 µs and, with an object as the value, its p99
// (docs/performance.md). Here a request costs two small objects that die young.
const kRequestEntry = Symbol("subgate request");
function ContextData(entry) {
  this[kRequestEntry] = entry;
}
ContextData.prototype = Object.create(null);  // no inherited numeric keys for Deno's lookups
const requestContext = typeof getAsyncContext === "function" && typeof setAsyncContext === "function"
  ? {
    run(entry, fn) {
      const previous = getAsyncContext();
      setAsyncContext(previous == null
        ? new ContextData(entry)
        : { __proto__: null, ...previous, [kRequestEntry]: entry });
      try {
        return fn();
      } finally {
        setAsyncContext(previous);
      }
    },
    getStore() {
      return getAsyncContext()?.[kRequestEntry];
    },
  }
  : new (await import("node:async_hooks")).AsyncLocalStorage();
// What subgate sends as x-request-id (core/pipeline/request_trace.h): anything else is not put in
// a report.
const requestIdPattern = /^[A-Za-z0-9._:-]{1,128}$/;
function requestEntry(hops, id) {
  return { hops, id: id !== null && requestIdPattern.test(id) ? id : "" };
}
let userHandler = null;
let userOnListen = null;

// The request as the relay's client made it: scheme from x-forwarded-proto, host from Host
// (which subgate sets to x-forwarded-host), as the request's own `url` (the native request stays
// intact). Worked out when user code first reads it: parsing the native URL cost the isolate
// about 3 µs per request, a quarter of a warm request, and most handlers never read it.
const nativeUrl = Object.getOwnPropertyDescriptor(Request.prototype, "url").get;
function clientUrl(request) {
  const url = new URL(nativeUrl.call(request));
  const scheme = request.headers.get("x-forwarded-proto") === "http" ? "http" : "https";
  const host = request.headers.get("host") ?? "localhost";
  return `${scheme}://${host}${url.pathname}${url.search}`;
}
const clientUrlProperty = {
  get() {
    const url = clientUrl(this);
    Object.defineProperty(this, "url", { value: url, configurable: true });
    return url;
  },
  configurable: true,
};

// One field of a request subgate sent, as the handler is about to run. Not through the request's
// Headers object: built from every field when first used, it cost the isolate about 1.5 µs per
// request, a sixth of a warm one. Deno's server keeps a lookup of one field on the request's
// inner object, under a symbol it describes as "request"; where this Deno has none, the Headers.
let innerRequestKey; // undefined: not looked for yet; null: this Deno has none
function requestHeader(request, name) {
  if (innerRequestKey === undefined) {
    innerRequestKey = Object.getOwnPropertySymbols(request)
      .find((key) => key.description === "request" && typeof request[key]?.header === "function") ?? null;
  }
  return innerRequestKey ? request[innerRequestKey].header(name) : request.headers.get(name);
}

// Listen at once on the socket subgate named (argument 1), while the permissions still allow
// it: a spare is then ready to serve the moment its code arrives. User code is loaded after the
// permissions are narrowed, so even its top-level code runs with the final set. Requests
// arrive only after the "ready" report.
await new Promise((listening) => {
  realServe({
    path: Deno.args[0],
    onListen: listening,
    onError(error) {
      console.error("uncaught exception in the request handler:", error);
      return new Response("Internal Server Error\n", { status: 500 });
    },
  }, (request, info) => {
    Object.defineProperty(request, "url", clientUrlProperty);
    const entry = requestEntry(subgateHops(requestHeader(request, "cdn-loop")),
      requestHeader(request, "x-request-id"));
    // No user code yet: the spare's own warm-up request (below); it takes the same path.
    return requestContext.run(entry, () => userHandler ? userHandler(request, info) : new Response(null, { status: 503 }));
  });
});

// Deno's HTTP server and this handler cost a millisecond or two on their first request (lazy
// code, first compilation): a spare sends itself one while it waits, before any user code is
// loaded, so that a client's first request does not pay it. Its own socket is the one unix
// socket the sandbox lets it connect to (isolate_limits.cc). A failure only loses the head start.
async function warmServer() {
  const conn = await Deno.connect({ transport: "unix", path: Deno.args[0] });
  try {
    await conn.write(new TextEncoder().encode("GET / HTTP/1.1\r\nhost: warm\r\nconnection: close\r\n\r\n"));
    const buffer = new Uint8Array(1024);
    while ((await conn.read(buffer)) !== null);
  } finally {
    conn.close();
  }
}

// Lines from stdin. The harness keeps the stream's reader locked for the process's life. That does
// not keep user code out (Deno.stdin.read, node:fs on fd 0 and process.stdin read the descriptor
// itself), so nothing secret comes here after the assignment, which is read before user code
// loads: a line user code takes is lost for its own isolate only (docs/config.md, "Isolates").
// A reader of its own buffer ("byob"): the default reader allocates a new 64 KiB buffer for every
// read, and the supervisor's pings (cpu_block_limit) made four a second. Outside V8's heap, those
// buffers were freed only by the next full GC, which an idle isolate rarely needs: it grew by
// about 200 KiB a second, to some 20 MiB more than at its start.
const stdinReader = Deno.stdin.readable.getReader({ mode: "byob" });
const stdinDecoder = new TextDecoder();
let stdinBuffer = new Uint8Array(16384);
let stdinText = "";
async function nextLine() {
  for (;;) {
    const newline = stdinText.indexOf("\n");
    if (newline >= 0) {
      const line = stdinText.slice(0, newline);
      stdinText = stdinText.slice(newline + 1);
      return line;
    }
    const { value, done } = await stdinReader.read(stdinBuffer);
    if (done) return null;
    stdinText += stdinDecoder.decode(value, { stream: true });
    stdinBuffer = new Uint8Array(value.buffer); // the read took the buffer over: it comes back
  }
}

// While a spare waits for work: Deno's first TypeScript module costs milliseconds (its caches
// open), the next ones not; load a one-line one (warm.ts, beside the harness) now rather than
// on a client's first request, and warm the server up. Their failure only loses the head start.
// User code is loaded only once both are done, so the warm-up request never reaches it.
const warming = Promise.all([
  import(new URL("./warm.ts", import.meta.url).href).catch(() => {}),
  warmServer().catch(() => {}),
]);

// The assignment: subgate's first line on stdin, read further below, once everything that does
// not depend on it is in place (console, egress guards, the cluster API): a spare does that
// work while it waits instead of on a client's first request (some of it loads Deno's lazy
// built-ins). Until then nothing reports: the harness's own errors go to stderr.
let assignment = null;
const stdoutEncoder = new TextEncoder();
function report(line) {
  const bytes = stdoutEncoder.encode(assignment ? `${assignment.nonce} ${line}\n` : `${line}\n`);
  const out = assignment ? Deno.stdout : Deno.stderr;
  for (let offset = 0; offset < bytes.length;) offset += out.writeSync(bytes.subarray(offset));
}

// ---- user code's console and uncaught errors, as reports (docs/origin.md "Events")
// Every console call is one report, however many lines its message has; the supervisor logs it
// and makes a `log` event of it. Methods not wrapped here (table, ...) write raw output.
const maxLogMessage = 65536;
let consoleIndent = "";
function logReport(level, message) {
  let text = consoleIndent ? message.replace(/^/gm, consoleIndent) : message;
  if (text.length > maxLogMessage) text = `${text.slice(0, maxLogMessage)}... (${text.length} characters)`;
  const id = requestContext.getStore()?.id;
  report(id ? `log ${level} ${id} ${JSON.stringify(text)}` : `log ${level} ${JSON.stringify(text)}`);
}
const consoleLevels = { debug: "debug", info: "info", log: "info", warn: "warn", error: "error" };
for (const [method, level] of Object.entries(consoleLevels)) {
  console[method] = (...args) => logReport(level, format(...args));
}
console.trace = (...args) => {
  const stack = (new Error().stack ?? "").split("\n").slice(2).join("\n");
  logReport("error", `Trace${args.length ? `: ${format(...args)}` : ""}\n${stack}`);
};
console.assert = (condition, ...args) => {
  if (!condition) logReport("error", `Assertion failed${args.length ? `: ${format(...args)}` : ""}`);
};
console.dir = (value, options) => logReport("info", Deno.inspect(value, options));
console.group = console.groupCollapsed = (...args) => {
  if (args.length) logReport("info", format(...args));
  consoleIndent += "  ";
};
console.groupEnd = () => {
  consoleIndent = consoleIndent.slice(2);
};
// An unhandled rejection is logged, and the isolate goes on; an uncaught exception ends it
// (as on Deno Deploy), after the report. Unless user code's own listener takes the event
// (preventDefault): the harness's listener runs first (it is registered first), so it cancels
// Deno's default itself and decides once every listener ran.
function afterListeners(event, decide) {
  let taken = false;
  const cancel = event.preventDefault.bind(event);
  Object.defineProperty(event, "preventDefault", {
    value: () => {
      taken = true;
      cancel();
    },
    configurable: true,
  });
  cancel();
  queueMicrotask(() => decide(taken));
}
globalThis.addEventListener("unhandledrejection", (event) => afterListeners(event, (taken) => {
  if (!taken) logReport("error", `Uncaught (in promise) ${format(event.reason)}`);
}));
globalThis.addEventListener("error", (event) => afterListeners(event, (taken) => {
  if (taken) return;
  const error = event.error ?? event.message;
  report(`uncaught ${JSON.stringify(format(error).slice(0, maxLogMessage))}`);
  Deno.exit(1);
}));

// ---- egress the permissions refuse (core/isolates/egress_policy.h)
// Deno's --deny-net list refuses the host's and private addresses, also after resolving a name.
// The code sees a permission error (NotCapable: fetch reports it as the cause of a TypeError,
// which is turned back into one); subgate counts the attempt and logs it, rate-limited.
const refusalPattern = /Requires net access to "([^"]*)"/;
function refusalOf(error) {
  if (error instanceof Deno.errors.NotCapable) return error;
  const match = refusalPattern.exec(String(error?.cause?.message ?? ""));
  return match ? new Deno.errors.NotCapable(match[0], { cause: error }) : null;
}
function noteRefusal(error) {
  const refusal = refusalOf(error);
  if (!refusal) return error;
  const target = refusalPattern.exec(refusal.message)?.[1] ?? "?";
  report(`denied ${target.replace(/[^\x21-\x7e]/g, "?").slice(0, 200)}`);
  return refusal;
}
function guardEgress(fn) {
  return function guarded(...args) {
    let result;
    try {
      result = fn.apply(this, args);
    } catch (error) {
      throw noteRefusal(error);
    }
    if (result && typeof result.then === "function") {
      return result.then(undefined, (error) => Promise.reject(noteRefusal(error)));
    }
    return result;
  };
}
// node:net's refusals arrive as "error" events: its stand-in (node_net_shim.js) reports them here.
Object.defineProperty(globalThis, Symbol.for("subgate.egress.refused"), {
  value: (error) => void noteRefusal(error),
});
for (const name of ["connect", "connectTls", "listen", "listenTls", "listenDatagram"]) {
  if (typeof Deno[name] === "function") Deno[name] = guardEgress(Deno[name]);
}
// A WebSocket reports a refused connection as an error event, not a throw. A Proxy keeps
// `instanceof WebSocket` true for every socket, the upgraded ones included.
globalThis.WebSocket = new Proxy(globalThis.WebSocket, {
  construct(target, args, newTarget) {
    const socket = Reflect.construct(target, args, newTarget);
    socket.addEventListener("error", (event) => {
      const match = refusalPattern.exec(String(event?.message ?? ""));
      if (match) noteRefusal(new Deno.errors.NotCapable(match[0]));
    });
    return socket;
  },
});


// Requests this isolate sends to subgate itself (one of its listeners or server names,
// own_hosts) carry its loop tag, so subgate can refuse a request sent back to its own deployment,
// and the hop count of the request being served in subgate's CDN-Loop entry, so that it refuses
// a loop through other deployments past isolate_loop_limit (both: 508 LOOP_DETECTED). Other
// hosts get neither: the headers user code set go out as they are.
const ownHosts = new Set(); // filled from the assignment

function isSubgate(url) {
  if (url.protocol !== "http:" && url.protocol !== "https:") return false;
  const host = url.hostname.toLowerCase().replace(/\.$/, "");
  const port = url.port || (url.protocol === "https:" ? "443" : "80");
  if (ownHosts.has(`${host}:${port}`)) return true;
  // A wildcard listener answers on every address of the host: any IP literal, or localhost.
  const literal = host === "localhost" || host.startsWith("[") || /^[0-9.]+$/.test(host);
  return literal && ownHosts.has(`*:${port}`);
}

// CDN-Loop entries: split on commas and semicolons outside quoted strings. A quote that is never
// closed opens no string: from it on every separator splits, as in subgate's parse
// (core/ingress/cdn_loop.cc), so that user code's `x"` cannot hide the entry appended after it.
function splitOutsideQuotes(text, separator) {
  const parts = [];
  let quoted = false;
  let start = 0;
  let opened = 0;
  for (let i = 0; i < text.length; i++) {
    if (quoted && text[i] === "\\") i++;
    else if (text[i] === '"') {
      quoted = !quoted;
      opened = i;
    } else if (!quoted && text[i] === separator) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  for (let i = quoted ? opened + 1 : text.length; i < text.length; i++) {
    if (text[i] !== separator) continue;
    parts.push(text.slice(start, i));
    start = i + 1;
  }
  parts.push(text.slice(start));
  return parts;
}

const isSubgateEntry = (entry) => splitOutsideQuotes(entry, ";")[0].trim().toLowerCase() === "subgate";

// The hops subgate counted for the request it gave this isolate (it always sends one entry,
// after those of CDNs in front). Its entry alone, as subgate writes it, is read without the
// general parse, which cost about 0.8 µs per request.
const ownEntryPrefix = "subgate; hops=";
const digits = /^[0-9]+$/;
function subgateHops(value) {
  if (value?.startsWith(ownEntryPrefix)) {
    const count = value.slice(ownEntryPrefix.length);
    if (digits.test(count)) return Number(count);
  }
  for (const entry of splitOutsideQuotes(value ?? "", ",")) {
    if (!isSubgateEntry(entry)) continue;
    for (const parameter of splitOutsideQuotes(entry, ";").slice(1)) {
      const [name, number] = parameter.split("=").map((part) => part.trim());
      if (name.toLowerCase() === "hops" && digits.test(number)) return Number(number);
    }
  }
  return 1;
}

const taggedFetch = (input, init) => {
  const request = new Request(input, init);
  if (isSubgate(new URL(request.url))) {
    request.headers.set("x-subgate-loop", assignment.loop_tag);
    // The entries of CDNs that user code passed on stay; subgate's own is this request's count
    // (outside a request's handler, as in top-level code: this one isolate).
    const others = splitOutsideQuotes(request.headers.get("cdn-loop") ?? "", ",")
      .map((entry) => entry.trim())
      .filter((entry) => entry && !isSubgateEntry(entry));
    others.push(`subgate; hops=${requestContext.getStore()?.hops ?? 1}`);
    request.headers.set("cdn-loop", others.join(", "));
  }
  return realFetch(request);
};
globalThis.fetch = guardEgress(taggedFetch);

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

// ---- the cluster API (docs/cluster.md)

const clusterSockets = new Set(); // every open connection accepted with subgate.connect()
const socketsByUid = new Map(); // uid -> Set of those connections
const pendingCalls = new Map(); // call id -> resolve
const earlyReports = []; // cluster reports made before "ready" (top-level code)
let serving = false;
let nextCallId = 1;
let gossipHandler = null;
// subgate always answers within cluster_timeout; this only guards against a lost answer.
let callGuardMs = 7000; // cluster_timeout_ms + 2000, from the assignment

function clusterReport(message) {
  const line = `cluster ${JSON.stringify(message)}`;
  if (serving) report(line);
  else earlyReports.push(line);
}

function clusterCall(op, fields, fallback) {
  const id = nextCallId++;
  return new Promise((resolve) => {
    const guard = setTimeout(() => {
      pendingCalls.delete(id);
      resolve(fallback);
    }, callGuardMs);
    pendingCalls.set(id, (result) => {
      clearTimeout(guard);
      resolve(result);
    });
    clusterReport({ op, id, ...fields });
  });
}

const asText = (message) => (typeof message === "string" ? message : JSON.stringify(message));

// Sends to this isolate's connections (of `uid`, when given), skipping `except`.
function deliverLocally(text, uid, except) {
  const targets = uid === undefined ? clusterSockets : (socketsByUid.get(uid) ?? []);
  let delivered = 0;
  for (const socket of targets) {
    if (socket === except || socket.raw.readyState !== WebSocket.OPEN) continue;
    try {
      socket.raw.send(text);
      delivered++;
    } catch {
      // closing meanwhile: its close handler removes it
    }
  }
  return delivered;
}

async function send(text, uid, except) {
  const fields = uid === undefined ? { msg: text } : { msg: text, uid };
  const remote = clusterCall("send", fields, { delivered: 0, isolates: 0, failed: 0, timed_out: 1 });
  const local = deliverLocally(text, uid, except);
  const result = await remote;
  return {
    delivered: local + result.delivered,
    isolates: result.isolates,
    failed: result.failed,
    timedOut: result.timed_out,
  };
}

const emit = (message, except) => deliverLocally(asText(message), undefined, except);
const broadcast = (message, except) => send(asText(message), undefined, except);
const whisper = (uid, message) => send(asText(message), String(uid));

async function gossip(message, options = {}) {
  const fields = { msg: message ?? null };
  if (Number.isInteger(options.timeout) && options.timeout > 0) fields.timeout_ms = options.timeout;
  const result = await clusterCall("gossip", fields, {
    answers: [], asked: 0, failed: 0, timed_out: 1, partial: true,
  });
  const answers = result.answers;
  answers.partial = result.partial;
  answers.asked = result.asked;
  answers.failed = result.failed;
  answers.timedOut = result.timed_out;
  return answers;
}

// The connection's identifier: identify()'s answer, which only subgate can set (it strips the
// header from client requests); a connection without one gets a unique id.
function uidOf(request) {
  const raw = request.headers.get("x-subgate-uid");
  if (!raw) return crypto.randomUUID();
  const bytes = [];
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === "%") {
      bytes.push(parseInt(raw.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(raw.charCodeAt(i));
    }
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

// Runs a user handler; what it throws (or rejects with) is logged, never fatal.
function runHandler(handler, ...args) {
  if (typeof handler !== "function") return;
  try {
    const result = handler(...args);
    if (result && typeof result.catch === "function") result.catch((error) => console.error(error));
  } catch (error) {
    console.error(error);
  }
}

function connect(request, handlers = {}) {
  const uid = uidOf(request); // before the upgrade, which consumes the request
  const { socket: raw, response } = Deno.upgradeWebSocket(request);
  const socket = {
    uid,
    raw,
    send: (message) => raw.send(asText(message)),
    close: (code, reason) => raw.close(code, reason),
    emit: (message, self = false) => emit(message, self ? undefined : socket),
    broadcast: (message, self = false) => broadcast(message, self ? undefined : socket),
    whisper: (uid, message) => whisper(uid, message),
  };
  let open = false;
  raw.onopen = () => {
    open = true;
    clusterSockets.add(socket);
    let peers = socketsByUid.get(socket.uid);
    if (!peers) socketsByUid.set(socket.uid, (peers = new Set()));
    peers.add(socket);
    clusterReport({ op: "join", uid: socket.uid });
    runHandler(handlers.onopen, socket);
  };
  raw.onmessage = (event) => runHandler(handlers.onmessage, socket, event.data);
  raw.onerror = (event) => runHandler(handlers.onerror, socket, event.error ?? event);
  raw.onclose = (event) => {
    if (open) {
      open = false;
      clusterSockets.delete(socket);
      const peers = socketsByUid.get(socket.uid);
      peers?.delete(socket);
      if (peers?.size === 0) socketsByUid.delete(socket.uid);
      clusterReport({ op: "leave", uid: socket.uid });
    }
    runHandler(handlers.onclose, socket, event.code, event.reason);
  };
  return response;
}

async function answerGossip(id, message) {
  let reply;
  try {
    if (!gossipHandler) throw new Error("this isolate has no subgate.ongossip handler");
    const value = await gossipHandler(message);
    reply = `cluster ${JSON.stringify({ op: "answer", id, ok: true, value: value ?? null })}`;
  } catch (error) {
    const text = String(error?.message ?? error);
    reply = `cluster ${JSON.stringify({ op: "answer", id, ok: false, error: text })}`;
  }
  report(reply);
}

// subgate's messages on stdin, until it closes our input.
async function serveCluster() {
  for (let line; (line = await nextLine()) !== null;) {
    let message;
    try {
      message = JSON.parse(line);
    } catch {
      continue;
    }
    if (message.op === "ping") {
      // The supervisor's watchdog (cpu_block_limit): answering takes a turn of the event loop.
      report(`pong ${message.seq}`);
    } else if (message.op === "deliver") {
      const delivered = deliverLocally(message.msg, message.uid);
      report(`cluster ${JSON.stringify({ op: "ack", id: message.id, delivered })}`);
    } else if (message.op === "gossip") {
      answerGossip(message.id, message.msg);
    } else if (message.op === "sent" || message.op === "gossiped") {
      const resolve = pendingCalls.get(message.id);
      pendingCalls.delete(message.id);
      resolve?.(message);
    }
  }
}

Object.defineProperty(globalThis, "subgate", {
  value: Object.freeze({
    connect,
    emit: (message) => emit(message),
    broadcast: (message) => broadcast(message),
    whisper,
    gossip,
    get ongossip() {
      return gossipHandler;
    },
    set ongossip(handler) {
      if (handler !== null && typeof handler !== "function") {
        throw new TypeError("subgate.ongossip must be a function or null");
      }
      gossipHandler = handler;
    },
  }),
  enumerable: false,
});

const assignmentLine = await nextLine();
await warming;
if (!assignmentLine) Deno.exit(0); // subgate went away before giving us work
assignment = JSON.parse(assignmentLine);
for (const host of assignment.own_hosts ?? []) ownHosts.add(host);
callGuardMs = (assignment.cluster_timeout_ms ?? 5000) + 2000;
for (const [name, value] of Object.entries(assignment.envs ?? {})) Deno.env.set(name, String(value));
// As on Deno Deploy: the deployment's id and the region serving it (the config's envs cannot
// override them).
Deno.env.set("DENO_DEPLOYMENT_ID", String(assignment.deployment_id ?? ""));
Deno.env.set("DENO_REGION", String(assignment.region ?? ""));

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
serving = true;
for (const line of earlyReports.splice(0)) report(line);
serveCluster().catch((error) => console.error("subgate: the cluster channel failed:", error));
