// Opens COUNT WebSockets to URL (at most 256 handshakes at a time), prints "open COUNT" when all
// are open (or "failed N" and exits 1), then holds them until stdin closes.
//   deno run --allow-net ws_idle_client.js URL COUNT
const [url, countText] = Deno.args;
const count = Number(countText);
const sockets = [];
let failed = 0;

function openOne() {
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    ws.onopen = () => resolve(true);
    ws.onerror = () => resolve(false);
    sockets.push(ws);
  });
}

let next = 0;
async function worker() {
  while (next < count) {
    next++;
    if (!(await openOne())) failed++;
  }
}
await Promise.all(Array.from({ length: 256 }, worker));
if (failed) {
  console.log(`failed ${failed}`);
  Deno.exit(1);
}
console.log(`open ${count}`);
for await (const _ of Deno.stdin.readable) { /* hold until stdin closes */ }
Deno.exit(0);
