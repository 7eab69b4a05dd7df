"""What every part of peerscope.cluster shares: the report schemas, the exit codes, the
node statuses and the two errors of the cluster commands."""

from ..errors import ERR_IO, Error, IOFailure

SCHEMA = "peerscope.cluster/1"
PLAN_SCHEMA = "peerscope.cluster-plan/1"

# Exit codes (README's table, plus the two that only cluster commands use).
EXIT_OK = 0
EXIT_FINDING = 1  # a node is not healthy (topo), nothing fits or unhealthy nodes (plan)
EXIT_USAGE = 2
EXIT_BAD_INPUT = 3
EXIT_NO_DRIVER = 4
EXIT_INTERNAL = 5
EXIT_CLUSTER = 6  # the Ray cluster could not be reached, or was lost mid-way
EXIT_NOT_INSTALLED = 127  # Ray (or vLLM, for launch) is not installed
EXIT_INTERRUPTED = 130

STATUSES = ("ok", "timeout", "no_gpus", "version_mismatch", "broken_pair", "error")
_BROKEN_VERDICTS = ("corrupt", "error", "hang")
_LINK_RANK = {"PIX": 0, "PXB": 1, "PHB": 2, "NODE": 3, "SYS": 4, "SOC": 4}
# Variables that are per node and set by Ray itself (GPU assignment): never job-wide.
_PER_NODE_VARS = ("CUDA_VISIBLE_DEVICES",)


class ClusterLost(IOFailure):
    """The Ray cluster could not be reached, or stopped answering mid-way (exit code 6)."""

    default_status = ERR_IO


class ClusterRefused(Error):
    """Planning refused: a node is not healthy and ``allow_partial`` is off, or no node is
    healthy (exit code 1, a finding)."""


def _first_lines(text: str, n: int) -> str:
    lines = [ln.strip() for ln in str(text).strip().splitlines() if ln.strip()]
    return " | ".join(lines[:n])[:600]
