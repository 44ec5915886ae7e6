#!/usr/bin/env bash
# Configures (Ninja) and builds one build tree; extra arguments are Ninja targets.
#
#   scripts/build.sh [debug|release|asan|fuzz] [TARGET...]
#
#   debug    build/          RelWithDebInfo at -O3 (-g), tests on     (the default; run.sh, test.sh)
#   release  build-release/  GCC, Release, tests on                   (benchmarks build their
#                            targets)
#   asan     build-asan/     ASan + UBSan, -O1 -g with assertions, tests on
#   fuzz     build-fuzz/     clang, libFuzzer targets + ASan/UBSan, tests off
#
# Every variant builds with -Werror (SUBGATE_WERROR=ON); a plain cmake build does not.
# CMake is run only when the tree is not configured yet or these settings changed; after that
# Ninja re-runs it by itself when a CMakeLists.txt changes.
#
# Configuring needs only the packages of `scripts/setup.sh build`: it never looks for what the
# `test` group installs (scripts/check_config_deps.py checks that), so run.sh can configure
# build/ before the test packages exist. Building the test targets and fuzz needs `test` too;
# run.sh and test.sh install what they need.
#
# SUBGATE_BUILD_DIR=DIR configures and builds DIR instead of the variant's tree;
# SUBGATE_CONFIGURE_ONLY=1 stops after configuring.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mode="${1:-debug}"
shift || true

case "$mode" in
  debug)
    dir=build
    # -O3 as in Release (with -g): the tests run what users build, and the warnings that only
    # -O3 shows (GCC 12's -Wrestrict on std::string) fail this tree, which test.sh builds anyway.
    args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O3 -g -DNDEBUG"
      "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O3 -g -DNDEBUG" -DSUBGATE_TESTS=ON -DSUBGATE_SANITIZE=OFF)
    ;;
  release)
    dir=build-release
    args=(-DCMAKE_C_COMPILER=gcc -DCMAKE_CXX_COMPILER=g++
      -DCMAKE_BUILD_TYPE=Release -DSUBGATE_TESTS=ON -DSUBGATE_SANITIZE=OFF)
    ;;
  asan)
    dir=build-asan
    args=(-DCMAKE_BUILD_TYPE=Debug "-DCMAKE_C_FLAGS_DEBUG=-O1 -g" "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -g"
      -DSUBGATE_TESTS=ON -DSUBGATE_SANITIZE=ON)
    ;;
  fuzz)
    dir=build-fuzz
    args=(-DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++
      -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_C_FLAGS_DEBUG=-O1 -g" "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -g"
      -DSUBGATE_FUZZ=ON -DSUBGATE_TESTS=OFF -DSUBGATE_SANITIZE=ON)
    ;;
  *)
    echo "usage: scripts/build.sh [debug|release|asan|fuzz] [TARGET...]" >&2
    exit 2
    ;;
esac

# Warnings fail the project's own builds (a plain cmake build only warns: CMakeLists.txt).
args+=(-DSUBGATE_WERROR=ON)

build_dir="${SUBGATE_BUILD_DIR:-$root/$dir}"
stamp="$build_dir/.subgate-configure-args"
wanted="$(printf '%s\n' -GNinja "${args[@]}")"

if [[ ! -f "$build_dir/build.ninja" || ! -f "$stamp" || "$(cat "$stamp")" != "$wanted" ]]; then
  fresh=()
  # A cache made with other settings (another compiler or generator) is not reused.
  [[ -f "$build_dir/CMakeCache.txt" ]] && fresh=(--fresh)
  rm -f "$stamp"
  cmake -S "$root" -B "$build_dir" -G Ninja "${fresh[@]}" "${args[@]}"
  printf '%s\n' "$wanted" >"$stamp"
fi

if [[ "${SUBGATE_CONFIGURE_ONLY:-0}" == 1 ]]; then
  exit 0
fi

targets=()
[[ $# -gt 0 ]] && targets=(--target "$@")
cmake --build "$build_dir" --parallel "$(nproc)" "${targets[@]}"
