#!/usr/bin/env bash
# Prepare a Debian 12 machine to run and test netwarden, from a fresh clone.
#
#   scripts/setup.sh            system packages for the CLI, uv, and the .venv
#   scripts/setup.sh --server   the same, plus what the tests use: clickhouse-server, and
#                               chromium (headless: loads the HTML reports, draws PNG charts)
#
# Idempotent: installs only what is missing (apt-get update runs at most once, and only
# when a package is missing), then `uv sync --frozen` from the committed uv.lock.
# Meant to run as root; as another user it uses sudo for apt when needed.
set -euo pipefail

usage() {
    sed -n '2,9s/^# \{0,1\}//p' "$0"
}

want_server=0
for arg in "$@"; do
    case "$arg" in
        --server) want_server=1 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "setup.sh: unknown argument: $arg" >&2; usage >&2; exit 2 ;;
    esac
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

say() { printf 'setup: %s\n' "$*"; }

# --- Debian packages -----------------------------------------------------------------

# tshark/tcpdump: capture and the reference counts; iproute2/iptables: live sensor and
# traffic caps; clickhouse-server: the server store (tests start their own instance);
# chromium (+ fonts-liberation, one of its recommends): the tests load `report all --html`
# pages in it headless, and `--plot FILE.png` draws with it (kaleido finds /usr/bin/chromium).
packages=(tshark tcpdump iproute2 iptables)
if [[ $want_server == 1 ]]; then
    packages+=(clickhouse-server chromium fonts-liberation)
fi

is_installed() {
    [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true) == installed ]]
}

as_root() {
    if [[ $(id -u) == 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        echo "setup.sh: must run as root (or with sudo available) to run: $*" >&2
        exit 1
    fi
}

apt_updated=0
apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    if [[ $apt_updated == 0 ]]; then
        as_root apt-get update -q
        apt_updated=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

missing=()
for pkg in "${packages[@]}"; do
    is_installed "$pkg" || missing+=("$pkg")
done

if ((${#missing[@]})); then
    say "installing Debian packages: ${missing[*]}"
    # Answer wireshark-common's question (let non-root users capture?) up front: no.
    echo "wireshark-common wireshark-common/install-setuid boolean false" |
        as_root debconf-set-selections
    apt_install "${missing[@]}"
else
    say "Debian packages already installed: ${packages[*]}"
fi

# --- uv ------------------------------------------------------------------------------

find_uv() {
    if command -v uv >/dev/null; then
        command -v uv
        return
    fi
    local user_bin
    user_bin="$(python3 -m site --user-base 2>/dev/null || true)/bin/uv"
    if [[ -x $user_bin ]]; then
        echo "$user_bin"
    fi
}

uv=$(find_uv)
if [[ -z $uv ]]; then
    if ! python3 -m pip --version >/dev/null 2>&1; then
        say "installing python3-pip (to install uv)"
        apt_install python3-pip
    fi
    say "installing uv with pip (user install)"
    # Debian's Python is "externally managed" (PEP 668): a user install of one tool is fine.
    python3 -m pip install --quiet --user --break-system-packages uv ||
        python3 -m pip install --quiet --user uv
    uv=$(find_uv)
    if [[ -z $uv ]]; then
        echo "setup.sh: uv was installed but cannot be found on PATH or in the user base" >&2
        exit 1
    fi
else
    say "uv already installed: $uv"
fi

# --- Python environment --------------------------------------------------------------

say "syncing .venv from uv.lock ($("$uv" --version))"
"$uv" sync --frozen
say "ready: $repo/.venv/bin/netwarden ($("$repo/.venv/bin/netwarden" --version))"
