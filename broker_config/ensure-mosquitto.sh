#!/usr/bin/env bash
# Make sure a Mosquitto 2 broker binary is installed; install it with apt if not.
# The project never uses the system's broker service: it only needs the binary.
set -euo pipefail

if command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]; then
    exit 0
fi

echo "Mosquitto is not installed; installing it with apt-get (needs root)." >&2
if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
    echo "Running apt-get through sudo; you may be asked for your password." >&2
else
    echo "error: not root and no sudo; install it yourself: apt-get install mosquitto" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq mosquitto mosquitto-clients >/dev/null
# Debian starts the packaged service on port 1883; we leave it alone and run our own.
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]
