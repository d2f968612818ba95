"""A whole control plane on this machine's loopback, for trying kubelite out.

    python -m provisioning.loopback up [--dir .kubelite-local]
    python -m provisioning.loopback down [--dir .kubelite-local]

`up` starts a 3-member store (store.local_cluster), two apiservers with TLS, tokens and
RBAC, the scheduler, the controller-manager and one node agent whose pods share this
machine's network (`kubelite agent --network host`: no root needed); it writes the PKI
and an admin kubeconfig into the directory, applies a sample workload and prints how to
reach the cluster. The lab (`kubelite lab up` + `kubelite up`, as root) is the full
fleet with pod networking; this is the quick look without root. Every process is recorded by PID in the directory's
state file; `down` stops exactly those.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import secrets
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from apiserver.auth import kubeconfig, pki
from store import local_cluster

STATE_FILE = "control-plane.json"
NODE_NAME = "loopback-node"
SAMPLE = """apiVersion: v1
kind: Namespace
metadata: {name: demo}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: greeting, namespace: demo}
data: {message: hello from kubelite}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: demo, labels: {app: web}}
spec:
  replicas: 1   # pods share the host network here: one server per port
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: python:3
        command: ["python3", "-m", "http.server", "8080"]
        ports: [{containerPort: 8080}]
        resources: {requests: {cpu: 50m, memory: 32Mi}}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: demo}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
"""


def _spawn(argv: list[str], log_path: Path) -> int:
    log = open(log_path, "ab")  # noqa: SIM115 (the child keeps it)
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    return proc.pid


def _kubelet_client_cert(paths: pki.PkiPaths) -> tuple[Path, Path]:
    """The certificate apiservers present to agents (logs, node proxy)."""
    cert_path = paths.directory / "apiserver-kubelet-client.crt"
    key_path = paths.directory / "apiserver-kubelet-client.key"
    if not cert_path.exists():
        cert, key = pki.issue_client_cert(pki.load_cert(paths.ca_cert),
                                          pki.load_private_key(paths.ca_key),
                                          "kube-apiserver-kubelet-client", ["system:masters"])
        pki.write_pem(cert_path, pki.cert_pem(cert))
        pki.write_pem(key_path, pki.key_pem(key), private=True)
    return cert_path, key_path


def _ready(url: str, ca: Path, timeout: float) -> bool:
    context = ssl.create_default_context(cafile=str(ca))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=1.0, context=context) as r:
                if r.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def up(directory: Path) -> dict:
    directory.mkdir(parents=True, exist_ok=True)
    state_path = directory / STATE_FILE
    if state_path.exists():
        down(directory)
    store = local_cluster.up(directory / "store", 3)
    endpoints = ",".join(m["endpoint"] for m in store["members"])
    paths = pki.ensure_pki(directory / "pki", ["127.0.0.1", "localhost"])
    token = secrets.token_hex(16)
    node_token = secrets.token_hex(16)
    tokens = directory / "tokens.csv"
    tokens.write_text(f'{token},admin,admin-uid,"system:masters"\n'
                      f'{secrets.token_hex(16)},system:kube-scheduler,scheduler-uid,\n'
                      f'{secrets.token_hex(16)},system:kube-controller-manager,cm-uid,\n'
                      f'{node_token},system:node:{NODE_NAME},node-uid,"system:nodes"\n')
    tokens.chmod(0o600)
    kubelet_cert, kubelet_key = _kubelet_client_cert(paths)
    processes = []
    urls = []
    for i in range(2):
        port = local_cluster.free_port()
        url = f"https://127.0.0.1:{port}"
        argv = [sys.executable, "-m", "apiserver.main", "--store-endpoints", endpoints,
                "--listen", f"127.0.0.1:{port}", "--tls-cert-file", str(paths.serving_cert),
                "--tls-private-key-file", str(paths.serving_key),
                "--client-ca-file", str(paths.ca_cert), "--token-auth-file", str(tokens),
                "--service-account-key-file", str(paths.sa_pub),
                "--kubelet-client-certificate", str(kubelet_cert),
                "--kubelet-client-key", str(kubelet_key)]
        pid = _spawn(argv, directory / f"apiserver{i}.log")
        processes.append({"name": f"apiserver{i}", "pid": pid, "url": url})
        urls.append(url)
    config = directory / "admin.kubeconfig"
    kubeconfig.write_kubeconfig(config, urls, paths.ca_cert, "admin", token=token)
    for proc in processes:
        if not _ready(proc["url"], paths.ca_cert, 30.0):
            raise SystemExit(f"{proc['name']} did not become ready; see "
                             f"{directory / (proc['name'] + '.log')}")
    for component, module in (("scheduler", "controllers.scheduler_runner"),
                              ("controller-manager", "controllers.manager")):
        if importlib.util.find_spec(module) is None:
            continue
        extra = ["--service-account-private-key-file", str(paths.sa_key)] \
            if component == "controller-manager" else []
        pid = _spawn([sys.executable, "-m", "kubelite_cli", component, "--kubeconfig",
                      str(config), *extra], directory / f"{component}.log")
        processes.append({"name": component, "pid": pid})
    node_config = directory / "node.kubeconfig"
    kubeconfig.write_kubeconfig(node_config, urls, paths.ca_cert, f"system:node:{NODE_NAME}",
                                token=node_token)
    agent_port = local_cluster.free_port()
    pid = _spawn([sys.executable, "-m", "kubelite_cli", "agent", "--kubeconfig",
                  str(node_config), "--node-name", NODE_NAME, "--network", "host",
                  "--node-ip", "127.0.0.1", "--port", str(agent_port),
                  "--data-dir", str(directory / "agent"),
                  "--client-ca-file", str(paths.ca_cert)], directory / "agent.log")
    processes.append({"name": "agent", "pid": pid})
    state = {"store_dir": str(directory / "store"), "processes": processes,
             "kubeconfig": str(config), "apiservers": urls}
    state_path.write_text(json.dumps(state, indent=2))
    return state


def down(directory: Path) -> None:
    state_path = directory / STATE_FILE
    if state_path.exists():
        state = json.loads(state_path.read_text())
        local_cluster.stop_pids([proc["pid"] for proc in state["processes"]])
        if (directory / "agent").exists():
            # The agent's pods outlive it by design: stop them and their state.
            subprocess.run([sys.executable, "-m", "kubelite_cli", "agent", "--cleanup",
                            "--kubeconfig", str(directory / "node.kubeconfig"),
                            "--network", "host", "--node-ip", "127.0.0.1",
                            "--data-dir", str(directory / "agent")],
                           check=False, timeout=120)
        state_path.unlink()
    local_cluster.down(directory / "store")


def apply_sample(state: dict, directory: Path) -> None:
    """Apply the sample workload with kubectl, then show what the cluster made of it."""
    manifest = directory / "sample.yaml"
    manifest.write_text(SAMPLE)
    env = dict(os.environ, KUBECONFIG=state["kubeconfig"])
    subprocess.run(["kubectl", "apply", "-f", str(manifest)], env=env, check=False,
                   timeout=60)
    time.sleep(2)  # let the controllers create the ReplicaSet and its pods
    subprocess.run(["kubectl", "get", "all", "-n", "demo"], env=env, check=False, timeout=60)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m provisioning.loopback",
                                description="Run kubelite's control plane on loopback.")
    p.add_argument("action", choices=("up", "down", "sample"),
                   help="up: start (and apply the sample); down: stop; sample: apply the "
                        "sample workload to a running control plane")
    p.add_argument("--dir", default=".kubelite-local", help="state, PKI, data and logs")
    p.add_argument("--no-sample", action="store_true", help="do not apply the sample workload")
    args = p.parse_args(argv)
    directory = Path(args.dir).resolve()
    if args.action == "down":
        down(directory)
        print("stopped")
        return 0
    if args.action == "sample":
        apply_sample(json.loads((directory / STATE_FILE).read_text()), directory)
        return 0
    state = up(directory)
    if not args.no_sample:
        apply_sample(state, directory)
    print("\nkubelite control plane is up on loopback:")
    for proc in state["processes"]:
        print(f"  {proc['name']:<20} pid {proc['pid']}  {proc.get('url', '')}")
    print(f"  store members         {state['store_dir']}/cluster.json")
    print(f"\nreach it with:\n  export KUBECONFIG={state['kubeconfig']}\n"
          f"  kubectl get all -n demo")
    return 0


if __name__ == "__main__":
    sys.exit(main())
