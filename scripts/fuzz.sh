#!/usr/bin/env bash
# Fuzzes every parser that reads untrusted bytes (fuzz/fuzz_targets/), each for FUZZ_SECONDS
# (default 20), starting from its seed corpus in fuzz/corpus/ (written here) and, for the two
# file parsers, nmap's installed nmap-service-probes and nmap-payloads, copied at run time (the
# NPSL keeps them out of the repository). New inputs go to a scratch corpus, not into the
# repository; a crash fails the run and leaves its input in
# fuzz/artifacts/TARGET/ (turn it into a regression test). Needs the nightly toolchain and
# cargo-fuzz, which it installs when missing.
#
# Usage: scripts/fuzz.sh [TARGET...]      FUZZ_SECONDS=300 scripts/fuzz.sh reply_ipv4
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE/../fuzz"
SECS=${FUZZ_SECONDS:-20}

cargo +nightly --version >/dev/null 2>&1 || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked

targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo +nightly fuzz list)
for t in "${targets[@]}"; do cargo +nightly fuzz build "$t"; done
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failed=()
for t in "${targets[@]}"; do
    mkdir -p "$scratch/$t"
    case $t in
        service_probes_file) nmapfile=/usr/share/nmap/nmap-service-probes ;;
        payloads_file) nmapfile=/usr/share/nmap/nmap-payloads ;;
        *) nmapfile= ;;
    esac
    # libFuzzer's default -max_len is 4 KiB of the largest seed: the first 64 KiB of the file.
    [ -n "$nmapfile" ] && [ -r "$nmapfile" ] && head -c 65536 "$nmapfile" >"$scratch/$t/installed-nmap"
    log="$scratch/$t.log"
    if cargo +nightly fuzz run "$t" "$scratch/$t" "corpus/$t" -- \
        -max_total_time="$SECS" -print_final_stats=1 >"$log" 2>&1; then
        runs=$(grep -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}')
        echo "fuzz $t: ${runs:-?} executions in ${SECS} s, no crash"
    else
        echo "fuzz $t: FAILED"
        grep -E 'ERROR|panicked|Test unit written' "$log" | head -5
        failed+=("$t")
    fi
done
[ ${#failed[@]} -eq 0 ] || { echo "fuzz: crashes in ${failed[*]}"; exit 1; }
