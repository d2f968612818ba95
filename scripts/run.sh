#!/usr/bin/env bash
# The main job: set this machine up, start a local 3-member kubelite store cluster on
# 127.0.0.1, run a short demo against it, and print how to reach it.
#
#   bash scripts/run.sh          # up + demo
#   bash scripts/run.sh down     # stop the cluster started here (by its recorded PIDs)
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
DIR=${KUBELITE_LOCAL_DIR:-.kubelite-local}
if [ "${1:-up}" = "down" ]; then
  exec .venv/bin/python -m store.local_cluster down --dir "$DIR"
fi
.venv/bin/python -m store.local_cluster up --dir "$DIR"
echo
echo "demo:"
.venv/bin/python -m store.local_cluster demo --dir "$DIR"
echo
echo "stop it with: bash scripts/run.sh down"
