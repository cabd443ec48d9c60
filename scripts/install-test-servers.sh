#!/usr/bin/env bash
# Installs the real servers the test suite runs against, from Debian's packages:
#   tinyproxy  an HTTP CONNECT proxy (with and without credentials)
#   microsocks a SOCKS5 proxy
#   stunnel4   TLS in front of tinyproxy: an https:// proxy
#   tmux       a real terminal for the interactive command line's tests
# Does nothing for packages already installed. Needs root or sudo, and apt-get.
set -euo pipefail

packages=(tinyproxy microsocks stunnel4 tmux)
missing=()
for package in "${packages[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-test-servers: no apt-get here; install ${missing[*]} by hand" >&2
    exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
echo "install-test-servers: installing ${missing[*]}" >&2
$sudo apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts these as system services on install; the tests start their own.
for service in tinyproxy stunnel4; do
    $sudo systemctl stop "$service" >/dev/null 2>&1 || $sudo service "$service" stop >/dev/null 2>&1 || true
done
