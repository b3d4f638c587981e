# Shared by scripts/*: paths, tool locations and output helpers.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export PATH="$HOME/.cargo/bin:$ROOT/node_modules/.bin:$PATH"
# kubectl from PyPI when the system has none (scripts/setup). Last, because
# the venv's python would otherwise shadow the system's.
KUBECTL_VENV="$HOME/.cache/loopback/kubectl-venv"
export PATH="$PATH:$KUBECTL_VENV/bin"
# Build artifacts live outside the clone so a fresh clone reuses them.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/loopback/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-auto}"

CARGO_LEPTOS_VERSION=0.3.11
# cargo-leptos 0.3.11 needs a newer rustc to build than the default toolchain;
# the installed binary runs with any toolchain.
CARGO_LEPTOS_TOOLCHAIN=1.99.1

step() { printf '\n\033[1;34m==> %s\033[0m\n' "$*"; }
note() { printf '    %s\n' "$*"; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
    step "Installing Debian packages: $*"
    export DEBIAN_FRONTEND=noninteractive
    if ! as_root apt-get install -y --no-install-recommends "$@"; then
        as_root apt-get update
        as_root apt-get install -y --no-install-recommends "$@"
    fi
}

# Directory holding initdb and pg_ctl: PATH first, then Debian's location.
pg_bin_dir() {
    local initdb
    if initdb="$(command -v initdb)" && command -v pg_ctl >/dev/null; then
        dirname "$initdb"
        return
    fi
    local dir
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    [ -n "$dir" ] && [ -x "$dir/initdb" ] && echo "$dir"
}

# The wasm-bindgen version Cargo.lock pins; the CLI must match it exactly.
locked_wasm_bindgen_version() {
    awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$ROOT/Cargo.lock"
}
