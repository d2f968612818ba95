"""ServiceAccount and token syncs.

- `ServiceAccountSync`, one key per namespace: the `default` account exists in every
  active namespace (serviceaccounts.reconcile over that one namespace).
- `TokenSync`, one key per account ("namespace/name"): its legacy token Secret
  (sa_tokens.reconcile), minted with the --service-account-private-key-file key and
  carrying the cluster CA (--root-ca-file). Creates of Secrets are expectations, as
  pods are for ReplicaSets: a Secret cache that does not show the token just created
  would otherwise make a second one.
"""

from __future__ import annotations

from apiserver.auth import pki, tokens
from controllers import meta, sa_tokens, serviceaccounts
from controllers.context import Context, random_suffix
from controllers.expectations import Expectations
from controllers.harness import Controller
from controllers.informers import Informers, split_key
from controllers.runner import Outcome


class ServiceAccountSync:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.controller = Controller("serviceaccount", self.sync,
                                     ctx.workers("serviceaccount", 1),
                                     resync=ctx.options.sa_resync,
                                     keys=ctx.informers.namespaces.keys)

    def reset(self) -> None:
        return None

    async def sync(self, key: str) -> Outcome | None:
        inf = self.ctx.informers
        namespace = inf.namespaces.get(key)
        if namespace is None:
            return None
        todo = serviceaccounts.reconcile([namespace],
                                         Informers.in_namespace(inf.serviceaccounts, key))
        return await self.ctx.runner.run(todo, key=key)


class TokenSync:
    def __init__(self, ctx: Context, mint: sa_tokens.Minter, ca_crt: bytes) -> None:
        self.ctx = ctx
        self.mint = mint
        self.ca_crt = ca_crt
        self.controller = Controller("serviceaccount-token", self.sync,
                                     ctx.workers("serviceaccount-token", 2),
                                     keys=self.keys)
        self.reset()

    def reset(self) -> None:
        secrets = self.ctx.informers.secrets
        self.expectations = Expectations("secrets", lambda ns, name: secrets.get(name, ns),
                                         self.ctx.monotonic,
                                         self.ctx.options.expectations_timeout)

    def keys(self) -> list[str]:
        """Every account, and every account a token Secret names (gone ones included)."""
        inf = self.ctx.informers
        named = {f"{meta.namespace(s)}/{meta.annotations(s)[sa_tokens.NAME_ANNOTATION]}"
                 for s in inf.secrets.list() if s.get("type") == sa_tokens.TOKEN_TYPE
                 and meta.annotations(s).get(sa_tokens.NAME_ANNOTATION)}
        return sorted(set(inf.serviceaccounts.keys()) | named)

    async def sync(self, key: str) -> Outcome | None:
        if not self.expectations.satisfied(key):
            return Outcome(requeue_after=2.0)
        inf = self.ctx.informers
        namespace, name = split_key(key)
        account = Informers.get(inf.serviceaccounts, key)
        todo = sa_tokens.reconcile(namespace, name, account,
                                   Informers.in_namespace(inf.secrets, namespace),
                                   self.ca_crt, self.mint, self.ctx.wall(), random_suffix)
        if account is None:
            self.expectations.drop(key)
        return await self.ctx.runner.run(todo, key=key, expectations=self.expectations)


def minter(key_file: str, ttl: float) -> sa_tokens.Minter:
    """mint(namespace, name, uid) signing with the private key in `key_file`."""
    private_key = pki.load_private_key(key_file)

    def mint(namespace: str, name: str, uid: str) -> str:
        return tokens.mint_service_account_token(private_key, namespace, name, uid, ttl=ttl)

    return mint

