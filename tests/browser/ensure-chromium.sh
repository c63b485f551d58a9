#!/usr/bin/env bash
# Make sure Debian's chromium is installed for the browser test (tests/browser); install it
# with apt if not. Playwright drives this binary: its own browser downloads are never used.
# Where apt cannot run, say so and exit 0: the browser test then skips with that reason.
set -euo pipefail

CHROMIUM=/usr/bin/chromium
if [ -x "$CHROMIUM" ]; then
    exit 0
fi

echo "Chromium is not installed; installing Debian's chromium with apt-get (needs root)." >&2
if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    echo "warning: not root and no password-less sudo; the browser test will be skipped." >&2
    echo "         Install it yourself to run it: apt-get install chromium" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium >/dev/null; }; then
    echo "warning: apt-get could not install chromium; the browser test will be skipped." >&2
    exit 0
fi
[ -x "$CHROMIUM" ] || echo "warning: chromium installed but $CHROMIUM is missing." >&2
