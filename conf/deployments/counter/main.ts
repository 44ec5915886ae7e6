// The Durable Object Gateway's Counter example (seed 003) on subgate's cluster API
// (docs/cluster.md). Each member, named by identify() (the demo's Lua script takes ?name=),
// connects a WebSocket to /ws and sends JSON:
//   {"type": "+1"} / {"type": "-1"}      changes its count; everyone in the cluster hears it
//   {"type": "refresh:leaderboard"}      everyone gets the top 10 of all isolates' counts
// The leaderboard asks every sibling isolate for its counts (gossip) at most once a minute.
// Unlike the seed, this isolate's own counts are part of the board, and a board built while a
// sibling failed to answer says so ("partial").

type Socket = {
  uid: string;
  send(message: unknown): void;
  emit(message: unknown): number;
  broadcast(message: unknown, self?: boolean): Promise<unknown>;
};
declare const subgate: {
  connect(req: Request, handlers: Record<string, unknown>): Response;
  gossip(message: unknown): Promise<[string, number][][] & { partial: boolean }>;
  ongossip: ((message: { type?: string }) => unknown) | null;
};

const counts = new Map<string, number>();
let lastUpdate = 0;
let leaders: [string, number][] = [];
let partial = false;
const refreshEvery = Number(Deno.env.get("LEADERBOARD_REFRESH_MS") ?? 60_000);

subgate.ongossip = (message) => {
  // Answers [uid, count] pairs: this isolate's part of the board.
  if (message?.type === "ask:scores") return [...counts];
  throw new Error(`Missing "${message?.type}" handler in ongossip`);
};

async function onmessage(socket: Socket, data: unknown) {
  let message: { type?: string };
  try {
    message = JSON.parse(String(data));
  } catch {
    return socket.send({ error: "send JSON" });
  }
  const reqid = socket.uid;
  let count = counts.get(reqid) ?? 0;
  if (message.type === "+1") count++;
  else if (message.type === "-1") count--;
  else if (message.type === "refresh:leaderboard") {
    if (Date.now() - lastUpdate > refreshEvery) {
      const results = await subgate.gossip({ type: "ask:scores" });
      const all = [...counts, ...results.flat(1)];
      leaders = all.sort((a, b) => b[1] - a[1]).slice(0, 10);
      partial = results.partial;
      lastUpdate = Date.now();
    }
    return socket.broadcast({ leaders, timestamp: lastUpdate, partial }, true);
  } else {
    return socket.send({ error: `unknown message type "${message.type}"` });
  }
  counts.set(reqid, count);
  return socket.broadcast(`"${reqid}" now has ${count}`, true);
}

Deno.serve((req) => {
  // Only the /ws pathname upgrades; everything else is a 404, as in the seed.
  if (!/^[/]ws[/]?$/.test(new URL(req.url).pathname) || req.headers.get("upgrade") !== "websocket") {
    return new Response("Invalid: connect a WebSocket to /ws\n", { status: 404 });
  }
  return subgate.connect(req, {
    onopen(socket: Socket) {
      counts.set(socket.uid, counts.get(socket.uid) ?? 0);
      socket.emit(`"${socket.uid}" has joined`); // only this isolate's members hear it
    },
    onmessage,
  });
});
