#!/usr/bin/env bash
# The whole test suite: set-up, formatting, lints, unit tests, and the lab integration tests
# (which need root; XDPSCAN_REQUIRE_LAB=1 makes a missing lab a failure, never a skip).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE/.."

# The lab's daemons run only in the lab's namespaces: none may appear on the host.
daemons_before=$(bash scripts/host-daemons.sh)
bash scripts/setup.sh --test
cargo fmt --all -- --check
cargo clippy --all-targets --release -- -D warnings
export XDPSCAN_REQUIRE_LAB="${XDPSCAN_REQUIRE_LAB:-1}"
# Lab tests serialise on a lock file; two test threads keep the CPU-light ones moving.
cargo test --release --no-fail-fast -- --test-threads 2
new_daemons=$(comm -13 <(echo "$daemons_before") <(bash scripts/host-daemons.sh))
if [ -n "$new_daemons" ]; then
    echo "test: lab daemons running on the host, outside the lab's namespaces:" >&2
    echo "$new_daemons" >&2
    exit 1
fi
echo "test: no lab daemon runs on the host"
# Every parser of untrusted bytes under libFuzzer, from its seed corpus (scripts/fuzz.sh).
FUZZ_SECONDS="${FUZZ_SECONDS:-20}" bash scripts/fuzz.sh
