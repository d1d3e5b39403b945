#!/usr/bin/env bash
# Build and run every cargo-fuzz target of the `shared` crate, one after another, each for $1 seconds
# (default 60), and print each target's final libFuzzer stats. See docs/fuzzing.md.
#
#   fuzz/run.sh                 # 60 s per target
#   fuzz/run.sh 600             # 10 minutes per target
#   fuzz/run.sh 600 patch_engine filter_parse   # only these targets
#
# Environment:
#   CARGO_TARGET_DIR   where to build (default fuzz/target); use a directory of its own so a fuzz build
#                      never waits on the lock of the main workspace's target/.
#   FUZZ_KEEP_GOING=1  libFuzzer fork mode with -ignore_crashes: keep fuzzing after a crash (each crash
#                      is still saved to fuzz/artifacts/<target>/) instead of stopping at the first one.
#   FUZZ_JOBS          parallel fuzzing processes in keep-going mode (default 1).
#
# Only the stable toolchain is needed: cargo-fuzz passes nightly flags (-Zsanitizer=address …), which
# RUSTC_BOOTSTRAP=1 lets stable rustc accept. cargo-fuzz is installed from crates.io when missing.
# Seeds are read from fuzz/corpus/<target>/ (committed, never written) and, for patch_engine, from the captured
# Entra payloads in shared/fixtures/entra/ (the same files the unit and end-to-end tests use); the corpus libFuzzer grows goes to
# fuzz/.work/corpus/<target>/ and the logs to fuzz/.work/logs/ (both ignored by git).
# Exit status: 0 when no target crashed, 1 otherwise.
set -euo pipefail

secs="${1:-60}"
shift || true
case "$secs" in
    ''|*[!0-9]*) echo "usage: $0 [seconds] [target…]" >&2; exit 2 ;;
esac

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
cd "$root"

all_targets=(filter_parse patch_path patch_engine query_decode)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all_targets[@]}")

export RUSTC_BOOTSTRAP=1
target_dir="${CARGO_TARGET_DIR:-$here/target}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz (crates.io)"
    cargo install cargo-fuzz --locked
fi

echo "== building ${targets[*]} (target dir $target_dir)"
for t in "${targets[@]}"; do
    cargo fuzz build --fuzz-dir "$here" --target-dir "$target_dir" "$t"
done

work="$here/.work"
mkdir -p "$work/logs"
summary=()
crashed=0
for t in "${targets[@]}"; do
    mkdir -p "$work/corpus/$t" "$here/artifacts/$t" "$here/corpus/$t"
    log="$work/logs/$t.log"
    args=(-max_total_time="$secs" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1
          -dict="$here/dict/scim.dict" -artifact_prefix="$here/artifacts/$t/")
    if [ "${FUZZ_KEEP_GOING:-0}" = 1 ]; then
        args+=(-fork="${FUZZ_JOBS:-1}" -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
    fi
    echo "== $t: fuzzing for ${secs}s (log: ${log#$root/})"
    before=$(ls "$here/artifacts/$t" | wc -l)
    status=0
    seeds=("$here/corpus/$t")
    [ "$t" = patch_engine ] && seeds+=("$root/shared/fixtures/entra")
    cargo fuzz run --fuzz-dir "$here" --target-dir "$target_dir" "$t" \
        "$work/corpus/$t" "${seeds[@]}" -- "${args[@]}" >"$log" 2>&1 || status=$?
    after=$(ls "$here/artifacts/$t" | wc -l)
    new=$((after - before))
    # The last progress line (`#N DONE cov: … ft: … corp: … exec/s: …`, or the last `#N` before a crash).
    last=$(grep -aE '^#[0-9]+' "$log" | tail -n 1 || true)
    execs=$(grep -aE '^stat::number_of_executed_units:' "$log" | tail -n 1 | awk '{print $2}' || true)
    rate=$(grep -aE '^stat::average_exec_per_sec:' "$log" | tail -n 1 | awk '{print $2}' || true)
    cov=$(printf '%s\n' "$last" | grep -aoE 'cov: [0-9]+' | awk '{print $2}' || true)
    ft=$(printf '%s\n' "$last" | grep -aoE 'ft: [0-9]+' | awk '{print $2}' || true)
    corp=$(printf '%s\n' "$last" | grep -aoE 'corp: [0-9]+' | awk '{print $2}' || true)
    if [ -z "$execs" ]; then   # fork mode prints no final stats: take the execution count from the last line
        execs=$(printf '%s\n' "$last" | grep -aoE '^#[0-9]+' | tr -d '#' || true)
        # …and the average rate from it and the elapsed time (its own exec/s is the current rate only).
        elapsed=$(printf '%s\n' "$last" | grep -aoE ' time: [0-9]+' | grep -oE '[0-9]+' || true)
        [ -n "$execs" ] && [ -n "$elapsed" ] && [ "$elapsed" -gt 0 ] && rate=$((execs / elapsed)) || true
    fi
    echo "   final: $last"
    result="ok"
    if [ "$status" -ne 0 ] || [ "$new" -gt 0 ]; then
        crashed=1
        result="CRASH (exit $status, $new new artifact(s) in fuzz/artifacts/$t/)"
        grep -aE 'panicked at|ERROR: libFuzzer|SUMMARY:|^Test unit written to' "$log" | head -n 8 | sed 's/^/   /' || true
        # Replay each new artifact once and show the distinct panic messages (fork mode keeps no child logs).
        bin="$target_dir/x86_64-unknown-linux-gnu/release/$t"
        ls -t "$here/artifacts/$t" | head -n "$new" | while read -r a; do
            "$bin" "$here/artifacts/$t/$a" 2>&1 | grep -a -A1 'panicked at' | tail -n 1 |
                sed -E 's/"(\\.|[^"\\])*"/"…"/g; s/[0-9.e+-]{6,}/N/g' | cut -c1-160
        done | sort | uniq -c | sed 's/^/   distinct: /' || true
    fi
    echo "   $t: execs=${execs:-?} exec/s=${rate:-?} cov=${cov:-?} ft=${ft:-?} corpus=${corp:-?} -> $result"
    summary+=("$(printf '%-14s %12s %8s %6s %7s %7s  %s' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$result")")
done

echo
echo "== summary ($(date -u +%Y-%m-%dT%H:%MZ), ${secs}s per target)"
printf '%-14s %12s %8s %6s %7s %7s  %s\n' target execs exec/s cov ft corpus result
printf '%s\n' "${summary[@]}"
exit "$crashed"
