#!/usr/bin/env bash
# Prepare this machine for development and tests; idempotent, quiet unless something fails.
#
#   1. Debian packages the tests run against (real etcd 3.4, curl, ...), installed as root
#      only when one is missing. Later features append to APT_PACKAGES.
#   2. Debian's kubectl 1.20 (package kubernetes-client), unpacked into /opt/kubectl-1.20
#      rather than installed: its /usr/bin/kubectl would collide with the kubectl
#      dispatcher this machine already has. Tests run both against the apiserver.
#   3. .venv with the exact versions in requirements.lock, and kubelite itself installed
#      editable (so the `kubelite` console script exists).
#
# A second run takes the fast path: nothing missing, venv stamp matches, nothing done.
#
# Debian's etcd-server ships a service on the default ports 2379/2380. Installs here run
# with a policy-rc.d that forbids starting services; if one was started anyway we leave it
# alone: test clusters never use the default ports (see tests/ports.py).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

APT_PACKAGES="python3-venv etcd-server etcd-client curl ca-certificates haproxy openssh-server nftables iproute2 util-linux vagrant vagrant-libvirt"
PYTHON=${PYTHON:-python3}
VENV="$ROOT/.venv"
STAMP="$VENV/.kubelite-setup-stamp"

LOG=$(mktemp)
POLICY_CREATED=""
cleanup() {
  rm -f "$LOG"
  if [ -n "$POLICY_CREATED" ]; then rm -f /usr/sbin/policy-rc.d; fi
}
trap cleanup EXIT

# Run a command with its output kept aside; show the output only if it fails.
quiet() {
  if ! "$@" >"$LOG" 2>&1; then
    echo "setup.sh: failed: $*" >&2
    tail -n 60 "$LOG" >&2
    exit 1
  fi
}

# --- Debian packages -----------------------------------------------------------------
missing=()
for pkg in $APT_PACKAGES; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup.sh: missing Debian packages: ${missing[*]}; run this script as root" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    # Keep package installs from starting services (Debian's etcd unit among them).
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    POLICY_CREATED=1
  fi
  quiet apt-get update
  quiet apt-get install -y --no-install-recommends "${missing[@]}"
fi

# --- kubectl 1.20, unpacked (not installed) ---------------------------------------------
KUBECTL_120=/opt/kubectl-1.20
if [ ! -x "$KUBECTL_120/usr/bin/kubectl" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup.sh: $KUBECTL_120 is missing; run this script as root" >&2
    exit 1
  fi
  (
    deb_dir=$(mktemp -d)
    trap 'rm -rf "$deb_dir" "$KUBECTL_120.partial"' EXIT
    cd "$deb_dir"
    if ! apt-get download kubernetes-client >"$LOG" 2>&1; then
      quiet apt-get update  # the package lists may be missing or stale
      quiet apt-get download kubernetes-client
    fi
    rm -rf "$KUBECTL_120.partial"
    quiet dpkg -x kubernetes-client_*.deb "$KUBECTL_120.partial"
    rm -rf "$KUBECTL_120"
    mv "$KUBECTL_120.partial" "$KUBECTL_120"
  )
fi

# --- Python virtual environment --------------------------------------------------------
want_stamp() {
  {
    "$VENV/bin/python" -c 'import sys; print(sys.version)'
    cat requirements.lock setup.cfg pyproject.toml
  } | sha256sum | cut -d' ' -f1
}

if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "setup.sh: $VENV is broken or older than Python 3.11; recreating it" >&2
  rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/python" ]; then
  rm -rf "$VENV"
  if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "setup.sh: $PYTHON is missing or older than Python 3.11 (set PYTHON=...)" >&2
    exit 1
  fi
  quiet "$PYTHON" -m venv "$VENV"
fi

if [ "$(cat "$STAMP" 2>/dev/null)" != "$(want_stamp)" ]; then
  rm -f "$STAMP"
  quiet "$VENV/bin/python" -m pip install --disable-pip-version-check -r requirements.lock
  quiet "$VENV/bin/python" -m pip install --disable-pip-version-check --no-deps \
    --no-build-isolation -e .
  want_stamp > "$STAMP"
fi
