// A deployment of several modules: the built-in origin serves this folder as one ESZIP (every
// module file in it, config.json aside), and each module sees its own specifier as
// import.meta.url, as on Deno Deploy.
import { greet } from "./lib/greet.ts";
import site from "./site.json" with { type: "json" };

Deno.serve((req: Request) => {
  const host = new URL(req.url).host;
  return new Response(
    `${greet(host, site.name)}\n` +
      `main module: ${import.meta.url}\n` +
      `imported:    ${new URL("./lib/greet.ts", import.meta.url)}, ${new URL("./site.json", import.meta.url)}\n`,
  );
});
