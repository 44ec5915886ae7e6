#!/usr/bin/env bash
# Installs what subgate needs and is missing; does nothing (quickly) when all is there.
#
#   scripts/setup.sh [build|test|runtime|bench|lint]...     (no argument: build test runtime)
#   scripts/setup.sh --list GROUP...                           prints the groups' packages
#
#   build    compiler, cmake, ninja and the libraries (plus GoogleTest and python3, because the
#            default build/ tree configures the tests): all that configuring any tree needs
#   test     what the tests drive: curl, nghttp, http-parser, clang + libFuzzer runtime, openssl,
#            clang-format (scripts/test.sh checks formatting), prometheus (its promtool checks
#            the `metrics;` output: tests/integration/test_metrics.py), chromium (headless, loads
#            the status page: tests/integration/test_status_page.py); needed to build the test targets,
#            never to configure (scripts/run.sh configures build/ without them; checked by
#            scripts/check_config_deps.py)
#   runtime  node + npm, then the Deno runtime pinned by package-lock.json (npm ci); bubblewrap
#            for the isolate sandbox (docs/security.md)
#   bench    nginx, HAProxy, wrk, h2load (nghttp2-client) and openssl (a test certificate) for
#            the benches in bench/ (bench/curve_bench.py, bench/ingress_bench.py, ...)
#   lint     clang-format, clang-tidy, shellcheck for scripts/lint.sh
#
# Debian 12 packages are checked with dpkg and installed with apt-get only when some are
# missing. The Deno binary's location is resolved by scripts/deno_path.sh.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

declare -A group_packages=(
  [build]="build-essential cmake ninja-build pkg-config libevent-dev libnghttp2-dev libssl-dev
           libjansson-dev libpcre2-dev liblua5.4-dev liburing-dev zlib1g-dev ca-certificates libgtest-dev python3"
  [test]="libgtest-dev python3 curl nghttp2-client libhttp-parser-dev clang libclang-rt-14-dev openssl clang-format
          prometheus chromium"
  [runtime]="nodejs npm ca-certificates bubblewrap"
  [bench]="nginx-light haproxy wrk nghttp2-client openssl curl"
  [lint]="clang-format clang-tidy shellcheck"
)
# Packages that also count as present when their command is (e.g. NodeSource's nodejs bundles
# npm and conflicts with Debian's npm package: never let apt swap a working node out).
declare -A package_command=([nodejs]=node [npm]=npm)

usage() {
  echo "usage: scripts/setup.sh [--list] [build|test|runtime|bench|lint]...  (default: build test runtime)" >&2
  exit 2
}

log() { echo "setup: $*" >&2; }

list_only=0
if [[ "${1:-}" == --list ]]; then
  list_only=1
  shift
  [[ $# -gt 0 ]] || usage
fi

groups=("$@")
if [[ ${#groups[@]} -eq 0 ]]; then
  groups=(build test runtime)
fi
wanted=()
for group in "${groups[@]}"; do
  [[ -n "${group_packages[$group]+set}" ]] || usage
  read -r -a pkgs <<<"${group_packages[$group]//$'\n'/ }"
  wanted+=("${pkgs[@]}")
done
mapfile -t wanted < <(printf '%s\n' "${wanted[@]}" | sort -u)
if [[ $list_only -eq 1 ]]; then
  printf '%s\n' "${wanted[@]}"
  exit 0
fi

# --- Debian packages -----------------------------------------------------------------------
# One dpkg call for all of them; a package counts only in state "install ok installed".
declare -A installed=()
while read -r pkg; do
  installed[$pkg]=1
done < <(dpkg -s "${wanted[@]}" 2>/dev/null |
  awk '/^Package: /{p=$2} /^Status: /{if ($NF == "installed") print p}' || true)

missing=()
for pkg in "${wanted[@]}"; do
  [[ -n "${installed[$pkg]+set}" ]] && continue
  cmd="${package_command[$pkg]:-}"
  [[ -n "$cmd" ]] && command -v "$cmd" >/dev/null 2>&1 && continue
  missing+=("$pkg")
done

if [[ ${#missing[@]} -gt 0 ]]; then
  log "installing Debian packages: ${missing[*]}"
  sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || { log "not root and no sudo: install ${missing[*]}"; exit 1; }
    sudo=(sudo)
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}"
fi

# --- Deno from the npm registry, pinned by package-lock.json ------------------------------
install_deno() {
  local stamp="$root/node_modules/.subgate-npm-ci.stamp"
  local locked version
  locked="$(node -e 'process.stdout.write(require(process.argv[1]).packages["node_modules/deno"].version)' \
    "$root/package-lock.json")"

  deno_ok() {
    version="$("$root/node_modules/.bin/deno" --version 2>/dev/null | head -n1)" || return 1
    [[ "$version" == "deno $locked "* ]] || return 1
    "$root/scripts/deno_path.sh" >/dev/null
  }

  local fresh=0
  if [[ ! -d "$root/node_modules" || ! -f "$stamp" ||
    "$root/package-lock.json" -nt "$stamp" || "$root/package.json" -nt "$stamp" ]]; then
    fresh=1
  elif ! deno_ok; then
    log "node_modules/.bin/deno does not run deno $locked; reinstalling"
    fresh=1
  fi
  if [[ $fresh -eq 1 ]]; then
    log "npm ci (deno $locked)"
    # Optional dependencies must stay on: the binary is in @deno/linux-x64-glibc.
    (cd "$root" && npm ci --no-audit --no-fund --include=optional)
    if ! deno_ok; then
      log "deno $locked does not run after npm ci (node_modules/.bin/deno --version: ${version:-nothing})"
      exit 1
    fi
    touch "$stamp"
  fi
}

for group in "${groups[@]}"; do
  if [[ "$group" == runtime ]]; then
    install_deno
    break
  fi
done
