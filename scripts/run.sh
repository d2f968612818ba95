#!/usr/bin/env bash
# The main job: set this machine up, build a lab of 5 machines (network namespaces with
# their own address and sshd: 3 control planes, 2 workers), provision kubelite onto them
# over SSH with `kubelite up` (store, apiservers behind HAProxy, scheduler,
# controller-manager, node agents), deploy a sample app (a Deployment of a small HTTP
# server and a Service), show it answering through its ClusterIP, and print how to use
# kubectl against the cluster.
#
#   bash scripts/run.sh          # set up + lab + kubelite up + sample app
#   bash scripts/run.sh down     # kubelite down, then remove the lab
#
# Without root there is no lab: the control plane and one agent run on 127.0.0.1
# instead (pods share the host network), see provisioning/loopback.py.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
KL=".venv/bin/kubelite"
DIR=${KUBELITE_RUN_DIR:-.kubelite-run}
LAB="$DIR/lab"
CLUSTER="$DIR/cluster"

if [ "$(id -u)" != 0 ]; then
  echo "run.sh: not root, so no lab (network namespaces need root): using loopback mode"
  if [ "${1:-up}" = "down" ]; then
    exec .venv/bin/python -m provisioning.loopback down --dir "$DIR/loopback"
  fi
  exec .venv/bin/python -m provisioning.loopback up --dir "$DIR/loopback"
fi

if [ "${1:-up}" = "down" ]; then
  if [ -f "$LAB/inventory.yaml" ]; then
    "$KL" down -i "$LAB/inventory.yaml" --dir "$CLUSTER" || true
  fi
  exec "$KL" lab down --dir "$LAB"
fi

if [ ! -f "$LAB/lab.json" ]; then
  "$KL" lab up --control-planes 3 --workers 2 --dir "$LAB" --prefix kl --subnet auto
fi
"$KL" up -i "$LAB/inventory.yaml" --dir "$CLUSTER" --sample
echo
echo "tear everything down with:  bash scripts/run.sh down"
