// A WebSocket server that accepts every upgrade and keeps the socket idle.
//   deno run --allow-net ws_idle_server.js PORT
const port = Number(Deno.args[0]);
Deno.serve({ port, hostname: "127.0.0.1", onListen() {} }, (req) => {
  if (req.headers.get("upgrade") !== "websocket") return new Response("ok");
  const { response } = Deno.upgradeWebSocket(req);
  return response;
});
