"""Airflow's ``[core] hostname_callable`` for the cluster run: each process names itself as told.

All processes run on one machine, so ``socket.getfqdn`` would give every worker and triggerer the
same hostname; ``CLUSTER_NODE_NAME`` tells them apart in the metadata DB (task instances, jobs).
"""

from __future__ import annotations

import os
import socket


def node_name() -> str:
    return os.environ.get("CLUSTER_NODE_NAME") or socket.getfqdn()
