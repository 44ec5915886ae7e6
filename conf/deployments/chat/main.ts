// A chat room over subgate's cluster API (docs/cluster.md). Members connect with a WebSocket
// to /ws; their name is the identifier identify() gave the request (the demo's Lua script takes
// it from ?name=). The room spans every isolate of this deployment:
//   text          everyone in the room, on any isolate (broadcast)
//   /to NAME text only NAME, wherever NAME is connected (whisper)
//   /local text   only the members on this isolate (emit)
//   /who          who is online: this isolate's members plus every sibling's answer (gossip)
// Every message to a member is JSON: {"type": "welcome" | "message" | "receipt" | "who", ...}.
// The sender of a command gets a receipt with the delivery counts subgate reported.

type Socket = { uid: string; send(message: unknown): void };
type Receipt = { delivered: number; isolates: number; failed: number; timedOut: number };
declare const subgate: {
  connect(req: Request, handlers: Record<string, unknown>): Response;
  emit(message: unknown): number;
  broadcast(message: unknown): Promise<Receipt>;
  whisper(uid: string, message: unknown): Promise<Receipt>;
  gossip(message: unknown, options?: { timeout?: number }): Promise<unknown[] & { partial: boolean }>;
  ongossip: ((message: unknown) => unknown) | null;
};

const isolate = crypto.randomUUID().slice(0, 8); // tells members apart by isolate
const members = new Map<string, number>(); // names connected to this isolate -> connections

subgate.ongossip = (message) => {
  if ((message as { type?: string })?.type === "who") return [...members.keys()].sort();
  throw new Error("unknown gossip");
};

async function command(socket: Socket, text: string) {
  const whisper = /^\/to (\S+) ([\s\S]*)$/.exec(text);
  if (whisper) {
    const receipt = await subgate.whisper(whisper[1], { type: "message", from: socket.uid, text: whisper[2], private: true });
    socket.send({ type: "receipt", command: "to", ...receipt });
  } else if (text.startsWith("/local ")) {
    const delivered = subgate.emit({ type: "message", from: socket.uid, text: text.slice(7), local: true });
    socket.send({ type: "receipt", command: "local", delivered, isolates: 0, failed: 0, timedOut: 0 });
  } else if (text === "/who") {
    const answers = await subgate.gossip({ type: "who" });
    socket.send({ type: "who", here: [...members.keys()].sort(), siblings: answers, partial: answers.partial });
  } else {
    const receipt = await subgate.broadcast({ type: "message", from: socket.uid, text });
    socket.send({ type: "receipt", command: "say", ...receipt });
  }
}

const page = `<!doctype html><meta charset="utf-8"><title>subgate chat</title>
<p>Name: <input id="name" value="guest"> <button id="join">join</button></p>
<pre id="log" style="height:20em;overflow:auto;border:1px solid #ccc"></pre>
<input id="text" size="60" placeholder="text, /to NAME text, /local text, /who">
<script>
let ws;
const log = (line) => { const el = document.getElementById("log"); el.textContent += line + "\\n"; el.scrollTop = 1e9; };
document.getElementById("join").onclick = () => {
  const name = encodeURIComponent(document.getElementById("name").value);
  ws = new WebSocket(new URL("ws?name=" + name, location.href.replace(/^http/, "ws")));
  ws.onmessage = (e) => log(e.data);
  ws.onclose = () => log("(closed)");
};
document.getElementById("text").onkeydown = (e) => {
  if (e.key === "Enter" && ws) { ws.send(e.target.value); e.target.value = ""; }
};
</script>`;

Deno.serve((req) => {
  const url = new URL(req.url);
  if (url.pathname !== "/ws") return new Response(page, { headers: { "content-type": "text/html; charset=utf-8" } });
  if (req.headers.get("upgrade") !== "websocket") return new Response("WebSocket only\n", { status: 426 });
  return subgate.connect(req, {
    onopen(socket: Socket) {
      members.set(socket.uid, (members.get(socket.uid) ?? 0) + 1);
      socket.send({ type: "welcome", uid: socket.uid, isolate });
    },
    onmessage(socket: Socket, data: unknown) {
      return command(socket, String(data));
    },
    onclose(socket: Socket) {
      const left = (members.get(socket.uid) ?? 1) - 1;
      if (left > 0) members.set(socket.uid, left);
      else members.delete(socket.uid);
    },
  });
});
