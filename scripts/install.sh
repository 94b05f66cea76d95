#!/usr/bin/env bash
# Builds xdpscan and installs the binary, its man page and its bash, zsh and fish completions
# under PREFIX (default /usr/local). XDPSCAN_BIN=path installs an already built binary instead.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE/.."
PREFIX="${PREFIX:-/usr/local}"
BIN="${XDPSCAN_BIN:-}"
if [ -z "$BIN" ]; then
    cargo build --release
    BIN=target/release/xdpscan
fi
install -d "$PREFIX/bin" "$PREFIX/share/man/man1" "$PREFIX/share/bash-completion/completions" \
    "$PREFIX/share/zsh/site-functions" "$PREFIX/share/fish/vendor_completions.d"
install -m 0755 "$BIN" "$PREFIX/bin/xdpscan"
"$BIN" --generate man | gzip -9n >"$PREFIX/share/man/man1/xdpscan.1.gz"
"$BIN" --generate bash >"$PREFIX/share/bash-completion/completions/xdpscan"
"$BIN" --generate zsh >"$PREFIX/share/zsh/site-functions/_xdpscan"
"$BIN" --generate fish >"$PREFIX/share/fish/vendor_completions.d/xdpscan.fish"
echo "installed: $PREFIX/bin/xdpscan, man xdpscan, completions for bash, zsh and fish"
