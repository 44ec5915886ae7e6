#!/usr/bin/env bash
# Prints the absolute path of the Deno executable that scripts/setup.sh installed from the npm
# registry (the version pinned by package-lock.json). The one place that knows where it is.
#
# It prints the native binary, never node_modules/.bin/deno: that entry is a symlink to the
# binary only when npm ran the package's postinstall script, and otherwise a Node.js shim that
# starts deno as its own child (slower, and signals and PR_SET_PDEATHSIG would reach the shim,
# not the isolate).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

case "$(uname -m)" in
  x86_64 | amd64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) arch="$(uname -m)" ;;
esac

# The postinstall script hard-links the binary into the deno package; without it, the binary
# is only in the platform package.
for candidate in "$root/node_modules/deno/deno" "$root/node_modules/@deno/linux-$arch-glibc/deno"; do
  if [[ -f "$candidate" && -x "$candidate" ]]; then
    echo "$candidate"
    exit 0
  fi
done
echo "deno_path: no Deno binary under $root/node_modules (run scripts/setup.sh runtime)" >&2
exit 1
