#!/usr/bin/env python3
"""Checks the include rules of docs/architecture.md ("Layers") on every .h and .cc file under
core/ and modules/: a file may include files of its own layer or below, never above, and a
module never includes another module. Prints each violation as FILE:LINE and exits 1 if any.

    scripts/check_layers.py [ROOT]
"""

import os
import re
import sys

# (path prefix, layer), the most specific prefix first. A prefix ending in "/" names a folder;
# otherwise it names the files whose path starts with it (a file and its _internal.h, ...).
LAYERS = [
    ("core/main.cc", 7),
    ("modules/module_list.cc", 7),
    ("modules/", 6),
    ("core/isolates/", 5),
    ("core/server/", 4),
    ("core/http1/http1_connection", 3),
    ("core/http1/http1_io", 3),
    ("core/http1/http1_request_body", 3),
    ("core/http1/http1_response", 3),
    ("core/http2/http2_", 3),
    ("core/upstream/", 2),
    ("core/connection/", 2),
    ("core/pipeline/", 1),
    ("core/", 0),
]

INCLUDE = re.compile(r'^\s*#\s*include\s+"((?:core|modules)/[^"]+)"')


def layer_of(path):
    for prefix, layer in LAYERS:
        if path.startswith(prefix):
            return layer
    return None


def module_of(path):
    parts = path.split("/")
    if parts[0] == "modules" and len(parts) > 2:
        return parts[1]
    return None


def check(root):
    problems = []
    for top in ("core", "modules"):
        for folder, _, files in os.walk(os.path.join(root, top)):
            for name in sorted(files):
                if not name.endswith((".h", ".cc")):
                    continue
                path = os.path.relpath(os.path.join(folder, name), root)
                own = layer_of(path)
                with open(os.path.join(root, path), encoding="utf-8") as f:
                    for number, line in enumerate(f, 1):
                        match = INCLUDE.match(line)
                        if not match:
                            continue
                        target = match.group(1)
                        theirs = layer_of(target)
                        if theirs is not None and own is not None and theirs > own:
                            problems.append(f"{path}:{number}: includes {target} (layer {theirs}) "
                                            f"from layer {own}")
                        mine, other = module_of(path), module_of(target)
                        if own == 6 and other is not None and other != mine:
                            problems.append(f"{path}:{number}: module {mine} includes module {other}")
    return problems


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
    problems = check(os.path.abspath(root))
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} include(s) against the layers of docs/architecture.md")
        return 1
    print("includes follow the layers of docs/architecture.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
