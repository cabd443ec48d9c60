#!/usr/bin/env bash
# Installs headless Chromium for the browser parity tests (tests/test_browser_parity.py) from
# Debian's package `chromium`; no browser download of its own. Does nothing when a Chromium is
# already there (`chromium`, or the program WSAPI_CHROMIUM names).
#
# Exit status: 0 when Chromium is ready; 3 when it cannot be installed here (no apt-get, the
# package cannot be installed, or the installed program does not run), said loudly. .ci/run
# retries it; then, with CI=true, it fails the run, and without it sets WSAPI_SKIP_BROWSER=1 so
# that the parity tests are skipped with a loud reason. Needs root or sudo for apt-get.
set -uo pipefail

cannot() {
    echo "######################################################################" >&2
    echo "## CHROMIUM NOT AVAILABLE: $*" >&2
    echo "## The browser parity tests (tests/test_browser_parity.py) cannot run here." >&2
    echo "######################################################################" >&2
    exit 3
}

works() {
    "$1" --version >/dev/null 2>&1
}

if [ -n "${WSAPI_CHROMIUM:-}" ]; then
    works "$WSAPI_CHROMIUM" && exit 0
    cannot "WSAPI_CHROMIUM=$WSAPI_CHROMIUM does not run ('$WSAPI_CHROMIUM --version' failed)"
fi
if command -v chromium >/dev/null 2>&1 && works chromium; then
    exit 0
fi

command -v apt-get >/dev/null 2>&1 || cannot "no apt-get on this machine to install Debian's chromium"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || cannot "not root, and no sudo to run apt-get"
    sudo="sudo"
fi
echo "install-chromium: installing Debian's chromium package" >&2
log="$(mktemp)"
if ! $sudo apt-get update -q >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    rm -f "$log"
    cannot "apt-get update failed"
fi
if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends chromium >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    rm -f "$log"
    cannot "apt-get install chromium failed"
fi
rm -f "$log"
command -v chromium >/dev/null 2>&1 || cannot "the chromium package installed no 'chromium' program"
works chromium || cannot "'chromium --version' fails after the install"
echo "install-chromium: $(chromium --version 2>/dev/null)" >&2
exit 0
