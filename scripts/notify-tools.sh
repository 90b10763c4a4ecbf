#!/usr/bin/env bash
# Installs the notification tests' real servers from PyPI into a virtualenv (made once, kept):
# aiosmtpd (an SMTP server) and standardwebhooks (the Standard Webhooks reference library the
# webhook receiver verifies signatures with), pinned in tests/notify/requirements.txt.
#
# Usage: scripts/notify-tools.sh VENV_DIR   (prints the virtualenv's python on success)
# Needs python3 with the venv module (Debian: apt-get install -y python3-venv) and PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:?usage: scripts/notify-tools.sh VENV_DIR}"
requirements="tests/notify/requirements.txt"
stamp="$venv/.requirements"
if [[ ! -x "$venv/bin/python" ]] || ! cmp -s "$requirements" "$stamp"; then
    echo "notify-tools.sh: installing $(grep -v '^#' "$requirements" | xargs) into $venv" >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$stamp"
fi
"$venv/bin/python" -c 'import aiosmtpd, standardwebhooks' >&2
echo "$venv/bin/python"
