#!/usr/bin/env bash
# Installs what is missing, builds build/ (RelWithDebInfo) and starts subgate in the foreground.
# Only the `build` and `runtime` groups are installed, which is all that configuring build/ needs
# (tests on; scripts/test.sh installs the `test` group before it builds the test targets).
# Without -c it runs the embedded default config (conf/subgate.conf); relative paths in a
# config resolve against the repository root. Arguments go to subgate, e.g.
#   scripts/run.sh -c conf/my.conf
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

"$root/scripts/setup.sh" build runtime
"$root/scripts/build.sh" debug subgate

SUBGATE_DENO="$("$root/scripts/deno_path.sh")"
export SUBGATE_DENO
exec "$root/build/subgate" -p "$root" "$@"
