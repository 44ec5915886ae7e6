// A WebSocket client (Deno's) driven line by line, for the integration tests.
//   deno run --allow-net ws_client.js URL [HEADERS_JSON]
// stdin:  "send TEXT" sends TEXT; "close" closes (code 1000).
// stdout: one JSON object per event: {"event":"open"}, {"event":"message","data":TEXT},
//         {"event":"close","code":N,"reason":TEXT}, {"event":"error","message":TEXT}.
// Exits after the close event.
const [url, headersJson] = Deno.args;
const headers = headersJson ? JSON.parse(headersJson) : {};
const say = (object) => console.log(JSON.stringify(object));

const ws = new WebSocket(url, { headers });
ws.onopen = () => say({ event: "open" });
ws.onmessage = (e) => say({ event: "message", data: String(e.data) });
ws.onerror = (e) => say({ event: "error", message: String(e.message ?? e) });
ws.onclose = (e) => {
  say({ event: "close", code: e.code, reason: e.reason });
  Deno.exit(0);
};

const decoder = new TextDecoder();
let pending = "";
for await (const chunk of Deno.stdin.readable) {
  pending += decoder.decode(chunk, { stream: true });
  let newline;
  while ((newline = pending.indexOf("\n")) >= 0) {
    const line = pending.slice(0, newline);
    pending = pending.slice(newline + 1);
    if (line.startsWith("send ")) ws.send(line.slice(5));
    else if (line === "close") ws.close(1000, "client done");
  }
}
