// The instance targeting example (seeds 000/001): each isolate keeps a random value and a
// counter in memory, so the output shows which isolate served a request.
const startTime = new Date();
const randomGlobal = Math.random().toString(36).slice(2, 12);
let counter = 0;

export default {
  fetch(req: Request): Response {
    const uptime = (Date.now() - startTime.getTime()) / 1000;
    const body = [
      `x-deno-isolate-instance-id: ${req.headers.get("x-deno-isolate-instance-id")}`,
      `Start time: ${startTime.toISOString()}`,
      `Uptime: ${uptime.toFixed(3)}s`,
      `Random global: ${randomGlobal}`,
      `Counter: ${counter++}`,
    ].join("\n");
    return new Response(body + "\n");
  },
};
