"""ESZIP bundles and Deno's HTTP cache (issue 18, core/bundle): subgate's ESZIP writer against the
real @deno/eszip reader and the other way round, and Deno cache entries written by
denoCacheEntry() that `deno run --cached-only` runs without network. The C++ side is reached
through tests/support/bundle_tool (BUNDLE_TOOL); @deno/eszip runs in Node
(tests/integration/eszip_read.mjs), Deno is the pinned one (scripts/deno_path.sh)."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import ROOT, deno  # noqa: E402

TOOL = os.environ.get("BUNDLE_TOOL") or os.path.join(ROOT, "build", "tests", "bundle_tool")
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus", "eszip")


def run(args, stdin=None, cwd=None, env=None):
    return subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=120, cwd=cwd, env=env)


def deno_eszip_read(path):
    """What @deno/eszip reads from the file, or None when it refuses it."""
    result = run(["node", os.path.join(HERE, "eszip_read.mjs"), path])
    if "ERR_MODULE_NOT_FOUND" in result.stderr:
        raise AssertionError("@deno/eszip is not installed (a devDependency): run npm ci, or "
                             "scripts/setup.sh runtime\n" + result.stderr)
    return json.loads(result.stdout) if result.returncode == 0 else None


def subgate_read(path):
    result = run([TOOL, "dump", path])
    return json.loads(result.stdout) if result.returncode == 0 else None


# TypeScript stored as-is (subgate's origin does not transpile), JSON, a source map, an empty
# module and a redirect chain of two hops.
MODULES = [
    {"specifier": "file:///app/main.ts", "kind": "javascript",
     "source": 'import data from "./data.json" with { type: "json" };\n'
               'import { greet } from "https://example.com/greet.ts";\n'
               "const who: string = data.who;\nconsole.log(greet(who));\n",
     "source_map": '{"version":3,"sources":["main.ts"],"mappings":""}'},
    {"specifier": "file:///app/data.json", "kind": "json", "source": '{"who": "world é"}', "source_map": ""},
    {"specifier": "https://example.com/greet.ts", "kind": "javascript",
     "source": "export const greet = (name: string): string => `hello ${name}`;\n", "source_map": ""},
    {"specifier": "file:///app/empty.js", "kind": "javascript", "source": "", "source_map": ""},
]
REDIRECTS = [
    {"specifier": "https://example.com/latest.ts", "target": "https://example.com/v1.ts"},
    {"specifier": "https://example.com/v1.ts", "target": "https://example.com/greet.ts"},
]
FINAL = {r["specifier"]: "https://example.com/greet.ts" for r in REDIRECTS}


class TestEszipCrossCheck(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="subgate-bundle-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def write(self, name, version, checksum):
        path = os.path.join(self.dir, name)
        manifest = {"version": version, "checksum": checksum, "modules": MODULES, "redirects": REDIRECTS}
        result = run([TOOL, "write", path], stdin=json.dumps(manifest))
        self.assertEqual(result.returncode, 0, result.stderr)
        return path

    def test_subgate_writer_output_reads_the_same_in_deno_eszip(self):
        for version, checksum in [("2", "sha256"), ("2.1", "sha256"), ("2.2", "sha256"), ("2.2", "none"),
                                  ("2.3", "sha256"), ("2.3", "none"), ("2.3", "xxhash3")]:
            with self.subTest(version=version, checksum=checksum):
                path = self.write(f"v{version}-{checksum}", version, checksum)
                seen = deno_eszip_read(path)
                self.assertIsNotNone(seen, "@deno/eszip refused subgate's file")
                self.assertEqual(seen["specifiers"],
                                 [m["specifier"] for m in MODULES] + [r["specifier"] for r in REDIRECTS])
                by_specifier = {m["specifier"]: m for m in MODULES}
                for specifier in seen["specifiers"]:
                    module = by_specifier[FINAL.get(specifier, specifier)]
                    self.assertEqual(seen["sources"][specifier], module["source"], specifier)
                    # @deno/eszip gives "" for a module without a source map (null once taken).
                    self.assertEqual(seen["source_maps"][specifier] or "", module["source_map"], specifier)

    def test_a_corrupt_sha256_digest_is_refused_by_both_readers(self):
        path = self.write("corrupt", "2.3", "sha256")
        with open(path, "rb") as f:
            data = bytearray(f.read())
        at = data.find(b"export const greet")
        data[at] ^= 0x20
        with open(path, "wb") as f:
            f.write(data)
        self.assertIsNone(deno_eszip_read(path))
        result = run([TOOL, "dump", path])
        self.assertEqual(result.returncode, 1)
        self.assertIn('bad SHA-256 checksum of the source of "https://example.com/greet.ts"', result.stderr)

    def test_a_corrupt_xxhash3_digest_is_refused_by_subgate(self):
        # @deno/eszip 0.106 (wasm, without the crate's xxhash3 feature) reads such files without
        # checking their digests, so it takes this one; subgate checks them.
        path = self.write("corrupt", "2.3", "xxhash3")
        with open(path, "rb") as f:
            data = bytearray(f.read())
        data[data.find(b"export const greet")] ^= 0x20
        with open(path, "wb") as f:
            f.write(data)
        self.assertIsNotNone(deno_eszip_read(path))
        result = run([TOOL, "dump", path])
        self.assertEqual(result.returncode, 1)
        self.assertIn('bad xxHash3 checksum of the source of "https://example.com/greet.ts"', result.stderr)

    def test_deno_eszip_files_read_the_same_in_subgate(self):
        names = sorted(os.listdir(CORPUS))
        self.assertGreaterEqual(len(names), 5)
        for name in names:
            with self.subTest(file=name):
                path = os.path.join(CORPUS, name)
                theirs, ours = deno_eszip_read(path), subgate_read(path)
                self.assertIsNotNone(theirs)
                self.assertIsNotNone(ours)
                modules = {m["specifier"]: m for m in ours["modules"]}
                targets = {r["specifier"]: r["target"] for r in ours["redirects"]}
                self.assertEqual(theirs["specifiers"],
                                 [m["specifier"] for m in ours["modules"]] + list(targets))
                for specifier in theirs["specifiers"]:
                    final = specifier
                    while final in targets:
                        final = targets[final]
                    self.assertEqual(theirs["sources"][specifier], modules[final]["source"], specifier)
                    self.assertEqual(theirs["source_maps"][specifier] or "", modules[final]["source_map"])


class TestDenoCache(unittest.TestCase):
    """Entries written by denoCacheEntry()/denoCacheRedirect() into a fresh DENO_DIR; deno runs the
    https URL with --cached-only. example.invalid cannot resolve, so a fetch would fail too."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="subgate-deno-cache-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.deno_dir = os.path.join(self.dir, "deno_dir")
        self.cwd = os.path.join(self.dir, "cwd")  # no deno.json, no lockfile
        os.makedirs(self.cwd)
        entries = [
            {"url": "https://example.invalid/a.ts", "content_type": "application/typescript",
             "body": 'import data from "./b.json" with { type: "json" };\n'
                     "const url: string = import.meta.url;\nconsole.log(url, data.answer);\n"},
            {"url": "https://example.invalid/b.json", "content_type": "application/json",
             "body": '{"answer": 42}'},
            {"url": "https://example.invalid/latest.ts", "location": "/a.ts"},
        ]
        result = run([TOOL, "cache", self.deno_dir], stdin=json.dumps(entries))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.paths = result.stdout.split()

    def deno_run(self, url, *flags):
        env = dict(os.environ, DENO_DIR=self.deno_dir, DENO_NO_UPDATE_CHECK="1", NO_COLOR="1")
        return run([deno(), "run", "--cached-only", *flags, url], cwd=self.cwd, env=env)

    def test_layout(self):
        self.assertEqual(len(self.paths), 3)
        for path in self.paths:
            self.assertTrue(path.startswith("remote/https/example.invalid/"), path)
            self.assertTrue(os.path.isfile(os.path.join(self.deno_dir, path)))

    def test_deno_runs_the_cached_module_with_its_https_url(self):
        result = self.deno_run("https://example.invalid/a.ts", "--allow-import=example.invalid")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), "https://example.invalid/a.ts 42")

    def test_a_cached_redirect_is_followed(self):
        result = self.deno_run("https://example.invalid/latest.ts", "--allow-import=example.invalid")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), "https://example.invalid/a.ts 42")

    def test_a_module_not_in_the_cache_fails(self):
        result = self.deno_run("https://example.invalid/missing.ts", "--allow-import=example.invalid")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("not found in cache", result.stderr)

    def test_allow_import_naming_another_host_refuses(self):
        # An explicit --allow-import list is enforced for the static imports of a remote root...
        result = self.deno_run("https://example.invalid/a.ts", "--allow-import=other.invalid")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("Requires import access", result.stderr)

    def test_without_allow_import_the_static_imports_of_a_remote_root_are_not_checked(self):
        # ...but with no --allow-import flag at all, deno 2.9.6 ran a remote root whose static
        # import goes to a host outside its default allow list (seen with other.invalid too).
        result = self.deno_run("https://example.invalid/a.ts")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), "https://example.invalid/a.ts 42")


if __name__ == "__main__":
    unittest.main()
