"""`kubelite certs status|rotate`: certificate expiry, and renewal without downtime.

`status` lists every certificate of the cluster's PKI with its expiry and warns about
those within 90 days. `rotate` re-issues the leaves that expire within `--within-days`
(all with `--force`) under the same CA (provisioning/cluster_pki.rotate), then runs
`up` one machine at a time: each machine gets its new files and restarts only the
processes that use them, while the other control planes keep serving, so clients
(which fail over between apiservers) see no outage.
"""

from __future__ import annotations

import datetime as dt
from typing import TextIO

from provisioning import cluster_pki, up
from provisioning.cluster_dir import ClusterDir
from provisioning.inventory import Inventory
from provisioning.status import table


def status_text(cdir: ClusterDir) -> str:
    expiries = cluster_pki.expiries(cdir.pki)
    rows = [("CERTIFICATE", "EXPIRES", "DAYS LEFT")]
    rows += [(e.name, e.not_after.strftime("%Y-%m-%d"), str(e.days_left)) for e in expiries]
    warnings = [f"WARNING: {w}" for w in cluster_pki.warnings(expiries)]
    return "\n".join([table(rows), *warnings])


def rotate(inv: Inventory, cdir: ClusterDir, *, out: TextIO, within_days: int = 90,
           force: bool = False) -> list[str]:
    renewed = cluster_pki.rotate(cdir.pki, within=dt.timedelta(days=within_days), force=force)
    print(f"renewed {len(renewed)} certificates" + (f": {', '.join(renewed)}" if renewed
                                                    else ""), file=out)
    if renewed:
        up.up(inv, cdir, out=out, serial=True)
    return renewed
