// Builds an ESZIP with @deno/eszip (the npm package pinned in package.json) from a module graph
// held in memory, for the integration tests' origins:
//
//   node eszip_build.mjs OUT < graph.json
//
// graph.json: {"roots": [specifier...], "files": {specifier: {"type": content-type,
// "content": text} | {"redirect": specifier}}}. Nothing is fetched: a specifier missing from
// `files` fails the build.
import { build } from "@deno/eszip";
import { readFileSync, writeFileSync } from "node:fs";

const [out] = process.argv.slice(2);
const graph = JSON.parse(readFileSync(0, "utf8"));

async function load(specifier) {
  const file = graph.files[specifier];
  if (file === undefined) return undefined;
  // A response for another specifier is a redirect to it (the eszip records both).
  if (file.redirect) return load(file.redirect);
  return { kind: "module", specifier, headers: { "content-type": file.type }, content: file.content };
}

writeFileSync(out, await build(graph.roots, load));
