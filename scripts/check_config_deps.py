#!/usr/bin/env python3
"""Checks that a configured build tree depends on nothing that `scripts/setup.sh test` installs.

    scripts/check_config_deps.py BUILD_DIR

scripts/run.sh installs only the `build` and `runtime` groups, then configures build/ (tests
on); scripts/test.sh installs the `test` group later and builds the same tree, which build.sh
does not configure again. So whatever the configuration found or missed stays: a find_library()
of a `test` package came up NOTFOUND on a fresh machine and the tests no longer linked. Two
checks catch that class of mistake, on any machine:

1. The configuration refers to no file of a package that only the `test` group installs (not
   `build` or `runtime`): CMakeCache.txt and build.ninja (link lines, include directories, the
   files CMake read) are searched for the paths `dpkg -L` lists for those packages. This one
   fails on a machine where everything is installed, such as CI's.
2. No cache entry of the project is NOTFOUND (CMake's own CMAKE_* tool lookups may be): a
   configuration must not quietly differ with what happens to be installed. This one fails on
   a machine where something is missing.

Prints what it checked; exits 1 on a finding, 2 on bad usage.
"""

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PATH_RE = re.compile(r"/[^\s;:\"'=,()$]+")


def group_packages(*groups):
    out = subprocess.run([os.path.join(ROOT, "scripts", "setup.sh"), "--list", *groups],
                         check=True, capture_output=True, text=True).stdout
    return set(out.split())


def package_paths(package):
    """The files and directories dpkg lists for an installed package (empty if not installed)."""
    r = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True)
    if r.returncode != 0:
        return []
    return [line for line in r.stdout.splitlines() if line.startswith("/")]


def owners(path):
    r = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True)
    if r.returncode != 0:
        return set()
    found = set()
    for line in r.stdout.splitlines():
        names = line.rsplit(": ", 1)[0]
        found.update(n.strip().split(":")[0] for n in names.split(","))
    return found


def main():
    if len(sys.argv) != 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    build_dir = sys.argv[1]
    cache_file = os.path.join(build_dir, "CMakeCache.txt")
    files = [cache_file, os.path.join(build_dir, "build.ninja")]
    for f in files:
        if not os.path.isfile(f):
            print(f"check_config_deps: {f} does not exist (configure {build_dir} first)",
                  file=sys.stderr)
            return 2

    findings = []

    # 1. Files of test-only packages.
    test_only = group_packages("test") - group_packages("build", "runtime")
    paths = {}  # path as dpkg lists it (and as resolved) -> package
    for package in sorted(test_only):
        for p in package_paths(package):
            paths.setdefault(p, package)
            paths.setdefault(os.path.realpath(p), package)
    mentioned = set()
    for f in files:
        with open(f, encoding="utf-8", errors="replace") as text:
            for token in PATH_RE.findall(text.read()):
                token = os.path.normpath(token)
                mentioned.add(token)
                if os.path.exists(token):
                    mentioned.add(os.path.realpath(token))
    for path in sorted(mentioned & paths.keys()):
        if os.path.isdir(path):
            dir_owners = owners(path)
            if not dir_owners or not dir_owners <= test_only:
                continue  # a directory that other packages share, such as /usr/include
        findings.append(f"{path} belongs to {paths[path]}, which only `scripts/setup.sh test` "
                        "installs: configuring must not look for it (link it by name, see "
                        "tests/CMakeLists.txt)")

    # 2. NOTFOUND entries.
    with open(cache_file, encoding="utf-8", errors="replace") as cache:
        for line in cache:
            m = re.match(r"([^#/][^:=]*):[A-Z]+=(.*)$", line.rstrip("\n"))
            if m and m.group(2).endswith("-NOTFOUND") and not m.group(1).startswith("CMAKE_"):
                findings.append(f"{m.group(1)} is {m.group(2)} in {cache_file}: a lookup that "
                                "failed stays failed in this tree")

    print(f"check_config_deps: {build_dir}: {len(mentioned)} paths in its configuration, "
          f"{len(test_only)} test-only packages ({', '.join(sorted(test_only))})")
    for finding in findings:
        print(f"check_config_deps: {finding}")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
