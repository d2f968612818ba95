#!/usr/bin/env bash
# Re-resolve requirements.lock: every dependency in setup.cfg (install_requires plus every
# extra) and everything they pull in, pinned exactly. Run after changing a
# dependency in setup.cfg, then run scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
"$PYTHON" - >"$SCRATCH/requirements.in" <<'PY'
import configparser

cfg = configparser.ConfigParser()
cfg.read("setup.cfg")
deps = cfg["options"]["install_requires"].split("\n")
for extra in cfg["options.extras_require"].values():
    deps += extra.split("\n")
deps += ["setuptools>=68", "wheel"]  # the build backend, for `pip install --no-build-isolation -e .`
print("\n".join(d.strip() for d in deps if d.strip()))
PY
"$PYTHON" -m venv "$SCRATCH/venv"
"$SCRATCH/venv/bin/pip" install --quiet -r "$SCRATCH/requirements.in"
{
  echo "# Exact versions for scripts/setup.sh; regenerate with scripts/lock.sh (do not edit by hand)."
  echo "# Resolved with $("$SCRATCH/venv/bin/python" -V) on $(date -u +%Y-%m-%d)."
  "$SCRATCH/venv/bin/pip" freeze --all | grep -v -E '^(pip)=='
} > requirements.lock
echo "wrote requirements.lock ($(grep -c '==' requirements.lock) pins)"
