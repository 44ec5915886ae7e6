// The smallest deployment: answers with a greeting that names the host the relay forwarded.
Deno.serve((req: Request) => {
  const url = new URL(req.url);
  return new Response(`Hello from ${url.protocol}//${url.host}${url.pathname} (deployment "hello", ${Deno.env.get("GREETING_SOURCE") ?? "no envs"})\n`);
});
