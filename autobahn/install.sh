#!/usr/bin/env bash
# Install the Autobahn|Testsuite fuzzing server (Python 2.7 only) into a cache dir.
#
#   AUTOBAHN_HOME   cache dir (default: $HOME/.cache/wsapi-autobahn)
#
# Result: $AUTOBAHN_HOME/py2/bin/python has autobahntestsuite installed.
# Exit codes: 0 installed (or already installed), 3 Python 2.7 not available, other = error.
# .ci/run retries it; on 3 it fails the run with CI=true, and skips the Autobahn tests without.
set -euo pipefail

AUTOBAHN_HOME="${AUTOBAHN_HOME:-$HOME/.cache/wsapi-autobahn}"
SUITE_VERSION="25.10.1"
MARKER="$AUTOBAHN_HOME/.installed-autobahntestsuite-$SUITE_VERSION"
TOOLVENV="$AUTOBAHN_HOME/toolvenv"
PY2VENV="$AUTOBAHN_HOME/py2"

log() { echo "[autobahn/install] $*" >&2; }

if [[ -f "$MARKER" && -x "$PY2VENV/bin/python" ]]; then
    exit 0
fi

find_python27() {
    local candidates=()
    if command -v pyenv >/dev/null 2>&1; then
        candidates+=("$(pyenv root)/versions/2.7.18/bin/python2.7")
    fi
    candidates+=("/root/.pyenv/versions/2.7.18/bin/python2.7")
    if command -v python2.7 >/dev/null 2>&1; then
        candidates+=("$(command -v python2.7)")
    fi
    local c
    for c in "${candidates[@]}"; do
        if [[ -x "$c" ]] && "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (2, 7))' \
            >/dev/null 2>&1; then
            echo "$c"
            return 0
        fi
    done
    return 1
}

if ! PY27="$(find_python27)"; then
    {
        echo "=================================================================="
        echo "AUTOBAHN CANNOT RUN: Python 2.7 not found (tried pyenv 2.7.18,"
        echo "/root/.pyenv/versions/2.7.18/bin/python2.7 and python2.7 on PATH)."
        echo "autobahntestsuite runs only on Python 2.7."
        echo "=================================================================="
    } >&2
    exit 3
fi

PY3="${PYTHON3:-python3}"
if ! command -v "$PY3" >/dev/null 2>&1; then
    log "python3 not found"
    exit 1
fi

mkdir -p "$AUTOBAHN_HOME"
# Start from scratch if a previous attempt was interrupted.
rm -rf "$TOOLVENV" "$PY2VENV"

log "creating tool venv with virtualenv<20.22 in $TOOLVENV"
"$PY3" -m venv "$TOOLVENV"
"$TOOLVENV/bin/pip" install --quiet --disable-pip-version-check "virtualenv<20.22"

log "creating Python 2.7 virtualenv from $PY27 in $PY2VENV"
"$TOOLVENV/bin/virtualenv" --quiet -p "$PY27" "$PY2VENV"

log "installing autobahntestsuite==$SUITE_VERSION (builds wsaccel, needs gcc)"
"$PY2VENV/bin/pip" install --quiet --disable-pip-version-check --no-python-version-warning \
    "autobahntestsuite==$SUITE_VERSION"

"$PY2VENV/bin/python" -c 'import autobahntestsuite.wstest, autobahntestsuite.fuzzing' >/dev/null

touch "$MARKER"
log "installed: $PY2VENV/bin/python"
