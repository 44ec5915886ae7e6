// Broadcast fan-out latency through subgate's isolate cluster (bench/cluster_bench.py).
//   deno run --allow-net ws_fanout_client.js URL COUNT ROUNDS HEADERS_JSON
// Opens COUNT WebSockets to URL?name=m<i> one after another (so that placement fills one isolate
// up to its isolate_limit before the next), then ROUNDS times: one member sends "b <round>",
// which the deployment broadcasts to the whole cluster; the time from the send to the last of
// the COUNT deliveries is one sample. Prints one JSON line: {"samples_ms": [...]} (or
// {"error": ...}).
const [url, countText, roundsText, headersJson] = Deno.args;
const count = Number(countText);
const rounds = Number(roundsText);
const headers = JSON.parse(headersJson ?? "{}");
const sockets = [];
let round = -1;
let received = 0;
let sentAt = 0;
let roundDone = null;

function openOne(index) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url}?name=m${index}`, { headers });
    ws.onopen = () => resolve(ws);
    ws.onerror = (e) => reject(new Error(`socket ${index}: ${e.message ?? e}`));
    ws.onmessage = (e) => {
      if (e.data !== `b ${round}`) return;
      if (++received === count) roundDone(performance.now() - sentAt);
    };
  });
}

try {
  for (let i = 0; i < count; i++) sockets.push(await openOne(i));
  const samples = [];
  for (round = 0; round < rounds; round++) {
    received = 0;
    const done = new Promise((resolve, reject) => {
      roundDone = resolve;
      setTimeout(() => reject(new Error(`round ${round}: ${received} of ${count} delivered in 10s`)), 10000);
    });
    sentAt = performance.now();
    sockets[(round * 101) % count].send(`b ${round}`);
    samples.push(await done);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  console.log(JSON.stringify({ samples_ms: samples }));
} catch (error) {
  console.log(JSON.stringify({ error: String(error.message ?? error) }));
}
Deno.exit(0);
