#!/usr/bin/env bash
# Checks formatting of every .cc/.h under core/, modules/ and tests/ against .clang-format
# (clang-format --dry-run --Werror). With --tidy, also runs clang-tidy (.clang-tidy) on the
# .cc files, using build/compile_commands.json (scripts/build.sh debug makes it).
#   scripts/lint.sh [--tidy]
# Fix formatting in place with:  clang-format -i $(find core modules tests -name '*.cc' -o -name '*.h')
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

tidy=0
case "${1:-}" in
  "") ;;
  --tidy) tidy=1 ;;
  *) echo "usage: scripts/lint.sh [--tidy]" >&2; exit 2 ;;
esac

scripts/setup.sh lint

mapfile -t files < <(find core modules tests -type f \( -name '*.cc' -o -name '*.h' \) | sort)
if [[ ${#files[@]} -eq 0 ]]; then
  echo "lint: no sources"
  exit 0
fi

status=0
echo "lint: clang-format on ${#files[@]} files"
clang-format --dry-run --Werror "${files[@]}" || status=1

if [[ $tidy -eq 1 ]]; then
  scripts/build.sh debug >/dev/null
  mapfile -t sources < <(printf '%s\n' "${files[@]}" | grep '\.cc$')
  echo "lint: clang-tidy on ${#sources[@]} files"
  if command -v run-clang-tidy >/dev/null 2>&1; then
    run-clang-tidy -quiet -p build -j "$(nproc)" "${sources[@]/#/$root/}" || status=1
  else
    clang-tidy --quiet -p build "${sources[@]}" || status=1
  fi
fi

if [[ $status -eq 0 ]]; then
  echo "lint: clean"
fi
exit "$status"
