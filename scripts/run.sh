#!/usr/bin/env bash
# The main job: set this machine up, start kubelite's control plane on loopback (a
# 3-member store, two apiservers with TLS/RBAC, the scheduler and controller-manager),
# show the store's API in a short demo, apply a sample workload, and print how to reach
# the cluster with kubectl.
#
#   bash scripts/run.sh          # up + demo + sample workload
#   bash scripts/run.sh down     # stop what was started here (by its recorded PIDs)
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
DIR=${KUBELITE_LOCAL_DIR:-.kubelite-local}
if [ "${1:-up}" = "down" ]; then
  exec .venv/bin/python -m provisioning.loopback down --dir "$DIR"
fi
.venv/bin/python -m provisioning.loopback up --dir "$DIR" --no-sample
echo
echo "store demo (etcd's v3 JSON API):"
.venv/bin/python -m store.local_cluster demo --dir "$DIR/store"
echo
echo "sample workload:"
.venv/bin/python -m provisioning.loopback sample --dir "$DIR"
echo
echo "reach it with:  export KUBECONFIG=$(cd "$DIR" && pwd)/admin.kubeconfig; kubectl get all -A"
echo "(pods stay Pending until node agents join: this build has no node agent yet)"
echo "stop it with:   bash scripts/run.sh down"
