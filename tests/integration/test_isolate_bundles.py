"""Deployments sent as ESZIP module graphs (issue 18, "Bundles"; docs/origin.md): a test origin
serves ESZIPs built here with @deno/eszip (tests/integration/eszip_build.mjs) or with subgate's
own writer (bundle_tool), alone or as stacked layers; each module sees its own specifier as
import.meta.url, remote modules load from the bundle without the network, and bad bundles give
ORIGIN_INVALID_BUNDLE with a message."""

import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from ingress import Deployment  # noqa: E402
from test_ingress_isolates import IngressCase  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.environ.get("SUBGATE_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))
TOOL = os.environ.get("BUNDLE_TOOL") or os.path.join(ROOT, "build", "tests", "bundle_tool")
TS = "application/typescript"
JS = "application/javascript"


def eszip(roots, files):
    """An ESZIP built by @deno/eszip from `files` (specifier -> content, or ("redirect", target),
    or (content-type, content))."""
    graph = {"roots": roots, "files": {}}
    for specifier, file in files.items():
        if isinstance(file, tuple) and file[0] == "redirect":
            graph["files"][specifier] = {"redirect": file[1]}
        elif isinstance(file, tuple):
            graph["files"][specifier] = {"type": file[0], "content": file[1]}
        else:
            kind = "application/json" if specifier.endswith(".json") else TS if specifier.endswith(".ts") else JS
            graph["files"][specifier] = {"type": kind, "content": file}
    with tempfile.NamedTemporaryFile(suffix=".eszip", delete=False) as out:
        path = out.name
    try:
        result = subprocess.run(["node", os.path.join(HERE, "eszip_build.mjs"), path], input=json.dumps(graph),
                                capture_output=True, text=True, timeout=120, cwd=ROOT)
        if result.returncode != 0:
            raise AssertionError("@deno/eszip could not build the bundle (npm ci?):\n" + result.stderr)
        with open(path, "rb") as f:
            return f.read()
    finally:
        os.unlink(path)


def own_eszip(modules, redirects=()):
    """An ESZIP from subgate's writer: modules are (specifier, source[, kind])."""
    manifest = {"modules": [{"specifier": m[0], "source": m[1], "kind": m[2] if len(m) > 2 else "javascript"}
                            for m in modules],
                "redirects": [{"specifier": s, "target": t} for s, t in redirects]}
    with tempfile.NamedTemporaryFile(suffix=".eszip", delete=False) as out:
        path = out.name
    try:
        result = subprocess.run([TOOL, "write", path], input=json.dumps(manifest), capture_output=True, text=True,
                                timeout=60)
        if result.returncode != 0:
            raise AssertionError(result.stderr)
        with open(path, "rb") as f:
            return f.read()
    finally:
        os.unlink(path)


# A graph of local TypeScript, JSON and a remote module reached through a redirect: each module
# reports its own import.meta.url.
GRAPH = {
    "file:///src/main.ts": """
        import data from "./data.json" with { type: "json" };
        import { lib } from "./lib/lib.ts";
        import { remote } from "https://example.com/latest/remote.ts";
        const main: string = import.meta.url;
        Deno.serve(() => Response.json({ main, lib, remote, data }));
    """,
    "file:///src/lib/lib.ts": "export const lib: string = import.meta.url;\n",
    "file:///src/data.json": '{"answer": 42}',
    "https://example.com/latest/remote.ts": ("redirect", "https://example.com/v1/remote.ts"),
    "https://example.com/v1/remote.ts": "export const remote: string = import.meta.url;\n",
}
EXPECTED = {"main": "file:///src/main.ts", "lib": "file:///src/lib/lib.ts",
            "remote": "https://example.com/v1/remote.ts", "data": {"answer": 42}}


class Bundles(IngressCase):
    def test_an_eszip_body_runs_with_each_module_under_its_own_specifier(self):
        self.origin.deployments["graph"] = Deployment(code=eszip(["file:///src/main.ts"], GRAPH))
        self.serve()
        r = self.get("graph")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(json.loads(r.body), EXPECTED)

    def test_fifty_modules(self):
        files = {f"file:///src/m{i}.ts": f"export const v{i}: number = {i};\n" for i in range(49)}
        files["file:///src/main.ts"] = "".join(f'import {{ v{i} }} from "./m{i}.ts";\n' for i in range(49)) + \
            "Deno.serve(() => new Response(String(" + " + ".join(f"v{i}" for i in range(49)) + ")));\n"
        self.origin.deployments["fifty"] = Deployment(code=eszip(["file:///src/main.ts"], files))
        self.serve()
        r = self.get("fifty")
        self.assertEqual((r.status, r.body), (200, str(sum(range(49))).encode()))

    def test_layers_stack_and_a_later_layer_wins(self):
        # The platform layer is fetched with /layer; the inline layer (the body) replaces its
        # config module and adds the entrypoint.
        platform = eszip(["file:///platform/base.ts", "file:///src/config.ts"], {
            "file:///platform/base.ts": "export const base: string = 'platform ' + import.meta.url;\n",
            "file:///src/config.ts": "export const who: string = 'platform default';\n",
        })
        # Written by subgate's writer: @deno/eszip wants every import inside the graph it builds.
        user = own_eszip([
            ("file:///src/main.ts", """
                import { base } from "file:///platform/base.ts";
                import { who } from "./config.ts";
                Deno.serve(() => new Response(base + " / " + who));
            """),
            ("file:///src/config.ts", "export const who: string = 'user';\n"),
        ])
        config = {"entrypoint": "file:///src/main.ts", "inline_layer": "user@1",
                  "layers": [{"kind": "eszip", "id": "platform@7"}, {"kind": "eszip", "id": "user@1"}]}
        self.origin.deployments["layered"] = Deployment(code=user, config=config, layers={"platform@7": platform})
        # A bundle layer: one module at its specifier over an eszip layer.
        config_bundle = {"entrypoint": "file:///src/main.ts", "inline_layer": "main",
                         "layers": [{"kind": "eszip", "id": "lib"},
                                    {"kind": "bundle", "id": "main", "specifier": "file:///src/main.ts"}]}
        lib = own_eszip([("file:///src/lib.js", "export const lib = 'lib ' + import.meta.url;\n")])
        self.origin.deployments["bundle-layer"] = Deployment(
            code='import { lib } from "./lib.js"; Deno.serve(() => new Response(lib));',
            config=config_bundle, layers={"lib": lib})
        self.serve()
        r = self.get("layered")
        self.assertEqual((r.status, r.body.decode()), (200, "platform file:///platform/base.ts / user"))
        self.assertEqual(self.origin.layer_calls, [("layered", "platform@7")])
        r = self.get("bundle-layer")
        self.assertEqual((r.status, r.body.decode()), (200, "lib file:///src/lib.js"))
        self.assertEqual(self.origin.auth_errors, [], "every /layer call carried the deployment's token")

    def test_an_import_the_bundle_lacks_never_reaches_the_network(self):
        code = own_eszip([("file:///src/main.js",
                           'import "https://example.com/not-in-bundle.js"; Deno.serve(() => new Response("x"));')])
        self.origin.deployments["lacks"] = Deployment(code=code, config={"entrypoint": "file:///src/main.js"})
        self.serve()
        r = self.get("lacks")
        self.assertEqual((r.status, r.error()["code"]), (502, "DEPLOYMENT_FAILED"))
        self.assertIn("not-in-bundle.js", r.error()["message"])

    def test_bad_bundles_get_origin_invalid_bundle(self):
        good = eszip(["file:///src/main.ts"], GRAPH)
        cases = {
            "truncated": Deployment(code=good[:len(good) // 2]),
            "corrupt": Deployment(code=good[:40] + bytes([good[40] ^ 0xff]) + good[41:]),
            "no-entrypoint": Deployment(code=own_eszip([("file:///src/main.ts", "x")]),
                                        config={"entrypoint": "file:///src/other.ts"}),
            "data-scheme": Deployment(code=own_eszip([("file:///src/main.ts", "x"), ("data:text/javascript,1", "1")])),
            "local-redirect": Deployment(code=own_eszip([("file:///src/main.ts", "x")],
                                                        [("file:///src/alias.ts", "file:///src/main.ts")])),
            "too-many": Deployment(code=eszip(["file:///src/main.ts"], GRAPH)),
            "bad-layer": Deployment(code=b"garbage", config={"layers": [{"kind": "eszip", "id": "a"}],
                                                            "inline_layer": "a"}),
        }
        self.origin.deployments.update(cases)
        self.origin.deployments["missing-layer"] = Deployment(
            config={"layers": [{"kind": "eszip", "id": "gone"}]})
        self.serve(runtime="bundle_max_modules 4;")
        for name in cases:
            r = self.get(name)
            self.assertEqual((r.status, r.error()["code"]), (502, "ORIGIN_INVALID_BUNDLE"), (name, r.body))
            self.assertTrue(r.error()["message"], name)
        self.assertIn("bundle_max_modules", self.get("too-many").error()["message"])
        self.assertIn("entrypoint", self.get("no-entrypoint").error()["message"])
        r = self.get("missing-layer")
        self.assertEqual((r.status, r.error()["code"]), (502, "ORIGIN_BOOT_RPC_ERROR"))
        self.assertIn("gone", r.error()["message"])


if __name__ == "__main__":
    unittest.main()
