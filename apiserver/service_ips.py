"""ClusterIP allocation from the service CIDR, safe across several apiservers.

Each allocated address is a key `/registry/serviceips/<ip>` created with a
create-if-absent transaction, so two apiservers can never hand out the same address;
the key is removed when its Service is deleted. Candidates are tried in a random order
(pure choice, given the random source), so concurrent allocators rarely collide.
"""

from __future__ import annotations

import ipaddress
import random

from apiserver import status
from apiserver.storage import Storage
from store.client import Compare, Op

PREFIX = "/registry/serviceips/"
MAX_ATTEMPTS = 64


def ip_key(ip: str) -> bytes:
    return (PREFIX + ip).encode()


def candidates(cidr: str, rng: random.Random, count: int) -> list[str]:
    """Random host addresses of the range, skipping the network address and the first
    host (kept for the `kubernetes` Service, as Kubernetes does)."""
    net = ipaddress.ip_network(cidr)
    size = net.num_addresses
    if size < 4:
        raise ValueError(f"service CIDR {cidr} is too small")
    return [str(net[rng.randrange(2, size - 1)]) for _ in range(count)]


def validate_requested(ip: str, cidr: str) -> str | None:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return f"Invalid value: \"{ip}\": must be a valid IP address"
    if address not in ipaddress.ip_network(cidr):
        return f"Invalid value: \"{ip}\": provided IP is not in the valid range. The range " \
               f"of valid IPs is {cidr}"
    return None


class ServiceIPs:
    def __init__(self, storage: Storage, cidr: str, rng: random.Random | None = None) -> None:
        self.storage = storage
        self.cidr = cidr
        self.rng = rng or random.Random()

    async def _claim(self, ip: str, owner: str) -> bool:
        key = ip_key(ip)
        result = await self.storage.guard(self.storage.client.txn(
            [Compare.create_revision(key, "=", 0)], [Op.put(key, owner.encode())], []))
        return result.succeeded

    async def allocate(self, service: dict) -> None:
        """Fill spec.clusterIP (and clusterIPs) for a ClusterIP/NodePort Service."""
        spec = service.setdefault("spec", {})
        if spec.get("type") == "ExternalName" or spec.get("clusterIP") == "None":
            return
        owner = f"{service['metadata'].get('namespace')}/{service['metadata']['name']}"
        requested = spec.get("clusterIP")
        if requested:
            problem = validate_requested(requested, self.cidr)
            if problem is None and not await self._claim(requested, owner):
                problem = f"Invalid value: \"{requested}\": provided IP is already allocated"
            if problem:
                raise status.invalid("Service", "", service["metadata"]["name"], [{
                    "reason": "FieldValueInvalid", "field": "spec.clusterIPs",
                    "message": problem}])
        else:
            for ip in candidates(self.cidr, self.rng, MAX_ATTEMPTS):
                if await self._claim(ip, owner):
                    requested = ip
                    break
            else:
                raise status.internal_error("failed to allocate a serviceIP: range is full")
        spec["clusterIP"] = requested
        spec["clusterIPs"] = [requested]

    async def release(self, service: dict) -> None:
        ip = (service.get("spec") or {}).get("clusterIP")
        if ip and ip != "None":
            await self.storage.guard(self.storage.client.delete(ip_key(ip)))
