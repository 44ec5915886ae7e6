// Reads an ESZIP with the real @deno/eszip (the npm package pinned in package.json) and prints
// what it sees as JSON: {"specifiers": [...], "sources": {specifier: source},
// "source_maps": {specifier: map or null}}, redirects followed as @deno/eszip follows them.
// Exits non-zero when @deno/eszip refuses the file. Used by tests/integration/test_bundle.py.
//
//   node tests/integration/eszip_read.mjs FILE
import { Parser } from "@deno/eszip";
import { readFileSync } from "node:fs";

const parser = await Parser.createInstance();
const specifiers = await parser.parseBytes(readFileSync(process.argv[2]));
await parser.load();
const sources = {};
const source_maps = {};
for (const specifier of specifiers) {
  sources[specifier] = await parser.getModuleSource(specifier);
  source_maps[specifier] = await parser.getModuleSourceMap(specifier);
}
console.log(JSON.stringify({ specifiers, sources, source_maps }));
