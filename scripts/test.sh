#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test:
#   0. formatting   every .cc/.h under core/, modules/, tests/ against .clang-format (one check)
#      layers       no include against docs/architecture.md's layers (scripts/check_layers.py)
#      docs         every test file that a README or docs/ page names exists (one check)
#      configuring  a scratch tree configured as run.sh configures build/ refers to no package of
#                   the `test` group and records no NOTFOUND (scripts/check_config_deps.py; one
#                   check): run.sh configures build/ before that group is installed
#      -Werror      build.sh's trees have it, a plain cmake configure has not (one check)
#   1. build/       unit + integration tests (ctest)
#      build-release/  the whole tree, tests included, as Release (-O3) with GCC and -Werror:
#                   built only, not run (one check), for warnings that only -O3 shows
#   2. build-asan/  the same tests under ASan + UBSan (leaks, aborts on the first report)
#   3. build-fuzz/  every libFuzzer target (*_fuzz), built with clang + ASan/UBSan, for FUZZ_SECONDS
#                   (20) each on a copy of tests/fuzz/corpus/NAME/, CTEST_JOBS (2) at a time;
#                   skipped without clang++
# The last line printed is "N passed, N failed" (ctest tests of both runs, fuzzers and the one-off
# checks; a build that fails counts as one failure). Exits non-zero if anything failed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

fuzz_seconds="${FUZZ_SECONDS:-20}"
ctest_jobs="${CTEST_JOBS:-2}"

passed=0
failed=0
failures=()
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

section() { printf '\n========== %s ==========\n' "$*"; }

fail() {
  failed=$((failed + 1))
  failures+=("$1")
  echo "FAILED: $1"
}

finish() {
  section "summary ($((SECONDS / 60))m$((SECONDS % 60))s)"
  local f
  for f in "${failures[@]}"; do
    echo "failed: $f"
  done
  echo "$passed passed, $failed failed"
  if [[ $failed -gt 0 ]]; then
    exit 1
  fi
  exit 0
}

# run_ctest LABEL DIR [VAR=VALUE...]: runs ctest in DIR and adds its counts.
run_ctest() {
  local label="$1" dir="$2"
  shift 2
  local log="$tmp/ctest-$label.log" rc=0 line
  (cd "$dir" && env "$@" ctest --output-on-failure -j"$ctest_jobs" --timeout 300) 2>&1 |
    tee "$log" || rc=$?
  line="$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n1)" || true
  if [[ -n "$line" ]]; then
    local nfailed ntotal
    nfailed="$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")"
    ntotal="$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\2/' <<<"$line")"
    passed=$((passed + ntotal - nfailed))
    if [[ $nfailed -gt 0 ]]; then
      failed=$((failed + nfailed))
      failures+=("$nfailed ctest test(s) in $dir")
    fi
    [[ $rc -eq 0 || $nfailed -gt 0 ]] || fail "ctest in $dir exited $rc"
  elif grep -q 'No tests were found' "$log"; then
    echo "WARNING: no tests registered in $dir"
    [[ $rc -eq 0 ]] || fail "ctest in $dir exited $rc"
  else
    fail "ctest in $dir did not report a result (exit $rc)"
  fi
}

# start_fuzzer EXE: runs one libFuzzer target on a temporary copy of its corpus, in the
# background; report_fuzzer EXE waits for it and adds its result. Fuzzers are single-threaded:
# they run `ctest_jobs` at a time.
start_fuzzer() {
  local exe="$1" name corpus work
  name="$(basename "$exe")"
  corpus="$root/tests/fuzz/corpus/${name%_fuzz}"
  work="$tmp/fuzz-$name"
  mkdir -p "$work/corpus" "$work/artifacts"
  [[ -d "$corpus" ]] && cp -R "$corpus/." "$work/corpus/"
  (
    rc=0
    timeout -k 10 $((fuzz_seconds + 60)) "$exe" -max_total_time="$fuzz_seconds" -timeout=10 \
      -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$work/artifacts/" \
      "$work/corpus" >"$work/log" 2>&1 || rc=$?
    echo "$rc" >"$work/rc"
  ) &
}

report_fuzzer() {
  local exe="$1" name work rc
  name="$(basename "$exe")"
  work="$tmp/fuzz-$name"
  while [[ ! -f "$work/rc" ]]; do
    wait -n 2>/dev/null || sleep 0.2
  done
  rc="$(cat "$work/rc")"
  if [[ -d "$root/tests/fuzz/corpus/${name%_fuzz}" ]]; then
    echo "--- $name (${fuzz_seconds}s, corpus: tests/fuzz/corpus/${name%_fuzz}/)"
  else
    echo "--- $name (${fuzz_seconds}s, no corpus)"
  fi
  if [[ $rc -eq 0 ]]; then
    passed=$((passed + 1))
    grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|Done )' "$work/log" || true
  else
    tail -n 60 "$work/log"
    local keep="$root/build-fuzz/artifacts/$name"
    mkdir -p "$keep"
    cp -R "$work/artifacts/." "$keep/"
    echo "artifacts kept in ${keep#"$root"/}/ (reproduce: $exe $keep/<file>)"
    fail "fuzzer $name (exit $rc)"
  fi
}

section "setup"
if ! scripts/setup.sh build test runtime; then
  fail "scripts/setup.sh build test runtime"
  finish
fi
SUBGATE_DENO="$(scripts/deno_path.sh)"
export SUBGATE_DENO

section "formatting (clang-format, .clang-format)"
mapfile -t sources < <(find core modules tests -type f \( -name '*.cc' -o -name '*.h' \) | sort)
if clang-format --dry-run --Werror "${sources[@]}"; then
  echo "${#sources[@]} files formatted"
  passed=$((passed + 1))
else
  fail "formatting (fix in place: clang-format -i FILE...; scripts/lint.sh checks)"
fi

section "layers (scripts/check_layers.py, docs/architecture.md)"
if python3 scripts/check_layers.py; then
  passed=$((passed + 1))
else
  fail "layers (an include against docs/architecture.md's layers)"
fi

section "docs name test files that exist"
# `tests/DIR/FILE` anywhere, and a bare test_*.py / *_test.cc / *_fuzz.cc in a module README.
mapfile -t docs < <(find README.md docs modules -name '*.md' | sort)
missing_docs=0
while IFS=: read -r doc name; do
  if [[ "$name" == tests/* ]]; then
    [[ -e "$name" ]] && continue
  elif [[ -n "$(find tests -name "$name" -print -quit)" ]]; then
    continue
  fi
  echo "$doc names $name, which does not exist"
  missing_docs=$((missing_docs + 1))
done < <(grep -oE 'tests/[A-Za-z0-9_./-]+\.(py|cc|h|js)|\b(test_[a-z0-9_]+\.py|[a-z0-9_]+_(test|fuzz)\.cc)\b' \
  "${docs[@]}" | sort -u)
if [[ $missing_docs -eq 0 ]]; then
  echo "${#docs[@]} documents checked"
  passed=$((passed + 1))
else
  fail "docs name $missing_docs test file(s) that do not exist"
fi

section "configuring as run.sh does (no test-group package, no NOTFOUND)"
# run.sh configures build/ with only `setup.sh build runtime` installed; whatever that
# configuration finds or misses stays in build/ for test.sh. A scratch tree with the same
# settings must not refer to any package that only the test group installs.
started=$SECONDS
if SUBGATE_BUILD_DIR="$tmp/run-config" SUBGATE_CONFIGURE_ONLY=1 scripts/build.sh debug \
  >"$tmp/run-config.log" 2>&1 && scripts/check_config_deps.py "$tmp/run-config"; then
  passed=$((passed + 1))
else
  tail -n 30 "$tmp/run-config.log"
  fail "configuring as run.sh does (scripts/check_config_deps.py)"
fi
echo "($((SECONDS - started))s)"

section "-Werror in the scripts' builds only"
# scripts/build.sh builds with -Werror; a user's or packager's plain cmake build must not, so
# that a newer compiler's new warning does not stop it.
started=$SECONDS
if ! grep -q -- ' -Werror' "$tmp/run-config/build.ninja" 2>/dev/null; then
  fail "scripts/build.sh does not build with -Werror (SUBGATE_WERROR)"
elif ! cmake -S . -B "$tmp/plain-config" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  >"$tmp/plain-config.log" 2>&1; then
  tail -n 30 "$tmp/plain-config.log"
  fail "a plain cmake -DCMAKE_BUILD_TYPE=Release configure"
elif grep -q -- '-Werror' "$tmp/plain-config/build.ninja"; then
  fail "a plain cmake -DCMAKE_BUILD_TYPE=Release build has -Werror"
else
  echo "build.sh: -Werror; plain cmake: none"
  passed=$((passed + 1))
fi
echo "($((SECONDS - started))s)"

section "build/ (RelWithDebInfo)"
if scripts/build.sh debug; then
  section "tests in build/"
  run_ctest debug build
else
  fail "build of build/"
fi

section "build-release/ (Release, GCC, -Werror, tests included; build only)"
# -O3 inlines more than build/'s -O2 and so warns where that does not (GCC 12's -Wrestrict on
# std::string): a user's plain Release build must not be the first to see it.
started=$SECONDS
if scripts/build.sh release; then
  passed=$((passed + 1))
else
  fail "build of build-release/ (Release, -Werror)"
fi
echo "($((SECONDS - started))s)"

section "build-asan/ (ASan + UBSan)"
if scripts/build.sh asan; then
  section "tests in build-asan/ (ASan + UBSan)"
  run_ctest asan build-asan \
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
else
  fail "build of build-asan/"
fi

section "fuzzers (build-fuzz/, clang, libFuzzer)"
if ! command -v clang++ >/dev/null 2>&1; then
  echo "skipped: clang++ is not installed"
elif [[ ! -f tests/fuzz/CMakeLists.txt ]]; then
  echo "skipped: tests/fuzz/CMakeLists.txt does not exist yet"
elif scripts/build.sh fuzz; then
  mapfile -t fuzzers < <(find build-fuzz -path '*/CMakeFiles' -prune -o \
    -type f -name '*_fuzz' -perm -u+x -print | sort)
  if [[ ${#fuzzers[@]} -eq 0 ]]; then
    echo "WARNING: the fuzz build produced no *_fuzz executable"
  fi
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  # ctest_jobs fuzzers at a time; reported in order.
  for ((i = 0; i < ${#fuzzers[@]}; i++)); do
    start_fuzzer "$root/${fuzzers[$i]}"
    if ((i + 1 >= ctest_jobs)); then
      report_fuzzer "$root/${fuzzers[$((i + 1 - ctest_jobs))]}"
    fi
  done
  for ((i = ${#fuzzers[@]} - ctest_jobs + 1; i < ${#fuzzers[@]}; i++)); do
    if ((i >= 0)); then report_fuzzer "$root/${fuzzers[$i]}"; fi
  done
else
  fail "build of build-fuzz/"
fi

finish
