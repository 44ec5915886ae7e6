// Loaded in place of `node:net` (the harness's import map, written beside the harness): a
// connection that Deno's permissions refuse reaches node:net's user as an "error" event, which
// the harness never sees. This module counts such refusals like the others (the harness's
// egress note), then is node:net itself: every export, the same objects.
import * as net from "node:net";
export * from "node:net";
export default net.default;

const watched = Symbol.for("subgate.egress.watched");
const note = globalThis[Symbol.for("subgate.egress.refused")];
const Socket = net.default.Socket;
if (typeof note === "function" && !Socket.prototype[watched]) {
  Object.defineProperty(Socket.prototype, watched, { value: true });
  const emit = Socket.prototype.emit;
  Socket.prototype.emit = function (event, ...args) {
    if (event === "error") note(args[0]);
    return emit.call(this, event, ...args);
  };
}
