// Writes the seed corpus of the eszip fuzzer (tests/fuzz/corpus/eszip/): real ESZIPs built by
// @deno/eszip (the npm package pinned in package.json), from module graphs held in memory here,
// so nothing is fetched. The files are committed; run this again only when the graphs change:
//
//   node tests/fuzz/corpus/make_eszip_corpus.mjs [BUNDLE_TOOL]
//
// With the path of build/tests/bundle_tool it also writes subgate_v2, subgate_v2_1,
// subgate_v2_2 and subgate_v2_3_xxhash3 with subgate's own writer (the versions and the
// checksums @deno/eszip does not write), from the sources of ts_json_remote as @deno/eszip
// stored them.
//
// It also writes tests/fuzz/corpus/eszip.json: what @deno/eszip's own parser reads back from
// each file (the specifiers in file order, and the SHA-256 of each one's source, redirects
// followed), which tests/unit/eszip_test.cc compares with parseEszip()'s result.
import { build, Parser } from "@deno/eszip";
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "eszip");
mkdirSync(out, { recursive: true });

const TS = "application/typescript";
const JS = "application/javascript";
const JSON_TYPE = "application/json";

// A loader over a map: specifier -> { type, content } or { redirect: target }.
function loaderFor(files) {
  return async (specifier) => {
    const file = files[specifier];
    if (file === undefined) return undefined;
    // A response whose specifier differs from the one asked for is a redirect to it: the
    // loader follows a chain to its end, as an HTTP client would.
    if (file.redirect) return loaderFor(files)(file.redirect);
    return {
      kind: "module",
      specifier,
      headers: { "content-type": file.type },
      content: file.content,
    };
  };
}

const graphs = {};

graphs.one_module = {
  roots: ["file:///app/main.js"],
  files: {
    "file:///app/main.js": {
      type: JS,
      content: 'Deno.serve(() => new Response("hello"));\n',
    },
  },
};

graphs.ts_json_remote = {
  roots: ["file:///app/main.ts"],
  files: {
    "file:///app/main.ts": {
      type: TS,
      content: [
        'import config from "./config.json" with { type: "json" };',
        'import { greet } from "https://example.com/lib/greet.ts";',
        "interface Reply { text: string }",
        "const reply: Reply = { text: greet(config.name) };",
        "Deno.serve(() => new Response(reply.text));",
        "",
      ].join("\n"),
    },
    "file:///app/config.json": { type: JSON_TYPE, content: '{ "name": "subgate" }\n' },
    "https://example.com/lib/greet.ts": {
      type: TS,
      content: "export function greet(name: string): string {\n  return `hello ${name}`;\n}\n",
    },
  },
};

// latest.ts -> v2.ts -> v2/mod.ts, and stable.ts -> v2/mod.ts: the graph records where each
// import ended up, two redirect entries to v2/mod.ts (and the hop between is not kept).
graphs.redirects = {
  roots: ["file:///app/main.ts"],
  files: {
    "file:///app/main.ts": {
      type: TS,
      content: 'import { version } from "https://example.com/latest.ts";\n' +
        'import { version as stable } from "https://example.com/stable.ts";\n' +
        "console.log(version, stable);\n",
    },
    "https://example.com/stable.ts": { redirect: "https://example.com/v2/mod.ts" },
    "https://example.com/latest.ts": { redirect: "https://example.com/v2.ts" },
    "https://example.com/v2.ts": { redirect: "https://example.com/v2/mod.ts" },
    "https://example.com/v2/mod.ts": { type: TS, content: "export const version: number = 2;\n" },
  },
};

// 50 modules: main imports ten, each of those imports four leaves, and one dynamic import.
graphs.graph_50 = (() => {
  const files = {};
  const imports = [];
  for (let i = 0; i < 10; i++) {
    const leaves = [];
    for (let j = 0; j < 4; j++) {
      const leaf = `file:///app/part${i}/leaf${j}.ts`;
      files[leaf] = { type: TS, content: `export const value: number = ${i * 4 + j};\n` };
      leaves.push(`import { value as v${j} } from "./leaf${j}.ts";`);
    }
    files[`file:///app/part${i}/mod.ts`] = {
      type: TS,
      content: `${leaves.join("\n")}\nexport const sum${i} = v0 + v1 + v2 + v3;\n`,
    };
    imports.push(`import { sum${i} } from "./part${i}/mod.ts";`);
  }
  files["file:///app/lazy.ts"] = { type: TS, content: "export default 42;\n" };
  files["file:///app/main.ts"] = {
    type: TS,
    content: `${imports.join("\n")}\nconst lazy = await import("./lazy.ts");\n` +
      `console.log(${[...Array(10).keys()].map((i) => `sum${i}`).join(" + ")}, lazy.default);\n`,
  };
  return { roots: ["file:///app/main.ts"], files };
})();

// An import map: @deno/eszip adds it as a JSON module at the front.
graphs.import_map = {
  roots: ["file:///app/main.ts"],
  importMap: "file:///app/import_map.json",
  files: {
    "file:///app/import_map.json": {
      type: JSON_TYPE,
      content: '{ "imports": { "lib/": "https://example.com/lib/" } }\n',
    },
    "file:///app/main.ts": {
      type: TS,
      content: 'import { greet } from "lib/greet.ts";\nconsole.log(greet("map"));\n',
    },
    "https://example.com/lib/greet.ts": {
      type: TS,
      content: "export const greet = (name: string) => `hi ${name}`;\n",
    },
  },
};

const manifest = {};
for (const [name, graph] of Object.entries(graphs)) {
  const bytes = await build(graph.roots, loaderFor(graph.files), graph.importMap);
  writeFileSync(join(out, name), bytes);
  const magic = new TextDecoder().decode(bytes.subarray(0, 8));
  console.log(`${name}: ${bytes.length} bytes, ${magic}`);
  const parser = await Parser.createInstance();
  const specifiers = await parser.parseBytes(bytes);
  await parser.load();
  const sources = {};
  for (const specifier of specifiers) {
    const source = await parser.getModuleSource(specifier);
    sources[specifier] = createHash("sha256").update(source, "utf8").digest("hex");
  }
  manifest[name] = { magic, specifiers, sources };
}
writeFileSync(join(here, "eszip.json"), JSON.stringify(manifest, null, 2) + "\n");

const tool = process.argv[2];
if (tool) {
  const bytes = await build(graphs.ts_json_remote.roots, loaderFor(graphs.ts_json_remote.files));
  const parser = await Parser.createInstance();
  const specifiers = await parser.parseBytes(bytes);
  await parser.load();
  const modules = [];
  for (const specifier of specifiers) {
    modules.push({
      specifier,
      kind: specifier.endsWith(".json") ? "json" : "javascript",
      source: await parser.getModuleSource(specifier),
      source_map: (await parser.getModuleSourceMap(specifier)) ?? "",
    });
  }
  const redirects = [{ specifier: "https://example.com/lib/latest.ts", target: modules[2].specifier }];
  for (const [name, version, checksum] of [
    ["subgate_v2", "2", "sha256"],
    ["subgate_v2_1", "2.1", "sha256"],
    ["subgate_v2_2", "2.2", "none"],
    ["subgate_v2_3_xxhash3", "2.3", "xxhash3"],
  ]) {
    execFileSync(tool, ["write", join(out, name)], {
      input: JSON.stringify({ version, checksum, modules, redirects }),
    });
    console.log(`${name}: subgate's writer, version ${version}, checksum ${checksum}`);
  }
}
