"""peerscope.cluster: several machines over the Ray cluster the user already runs.

- :func:`gather` runs ``peerscope check --json --live --all-gpus`` on every alive node of a Ray cluster
  (one Ray task per node, pinned with ``NodeAffinitySchedulingStrategy(soft=False)``, using
  the ``peerscope`` installed on that node) and gathers the verified reports into one
  ``peerscope.cluster/1`` report: nodes, GPUs, verified matrices, the NICs near each GPU
  (from ``nvidia-smi topo -m`` on the node, where it exists), and every node that is not
  healthy, by name (timeout, no GPUs, version mismatch, broken pair, error).
- :func:`plan` plans vLLM over the healthy nodes (``ps_plan_make_cluster``: one node when the
  model fits one, else TP inside a node and PP across the fewest nodes), refusing while a node
  is unhealthy unless ``allow_partial``.
- :func:`launch` starts ``vllm serve`` here (the head) with the plan, ``--distributed-executor-
  backend ray`` (``mp`` for a one-node plan) and the plan's environment handed to every Ray worker through the job's
  runtime environment (``RAY_JOB_CONFIG_JSON_ENV_VAR``, the variable ``ray job submit`` uses),
  then watches ``/health`` with the same library code as ``peerscope launch``.

Ray is imported lazily and only in a child process (the "driver"), so a cluster that dies
mid-way can never leave this process hung or half-way: the child is killed at the deadline
and the caller gets :class:`ClusterLost`. Command line: ``python -m peerscope.cluster``, also
reached as ``peerscope cluster`` (docs/cluster.md).

The package, one file per job:

- ``common.py``: schemas, exit codes, node statuses, :class:`ClusterLost` / :class:`ClusterRefused`;
- ``probe.py``: the function Ray runs on every node;
- ``driver.py``: Ray, lazily: the driver child and its supervision (deadline, GCS port watch);
- ``nics.py``: the NICs near each GPU from ``nvidia-smi topo -m``;
- ``report.py``: the ``peerscope.cluster/1`` report: :func:`build_report`, :func:`gather`, :func:`load_report`;
- ``clib.py``: ctypes declarations of the libpeerscope planning and launching calls;
- ``planning.py``: :func:`plan` (``ps_plan_make_cluster``) and :func:`runtime_env_vars`;
- ``launching.py``: :func:`launch` (``vllm serve`` on the head, ``ps_launch_run``);
- ``output.py``: :func:`write_atomic`, :func:`report_text`, :func:`plan_text`;
- ``cli.py``: argparse and :func:`main`; ``__main__.py``: ``python -m peerscope.cluster``.
"""

from .._version import __version__
from .cli import main
from .clib import (PS_LAUNCH_EXITED, PS_LAUNCH_HUNG, PS_LAUNCH_INTERRUPTED, PS_LAUNCH_MAX_ARGV, PS_LAUNCH_MAX_CONFLICTS,
                   PS_LAUNCH_NOT_FOUND, PS_LAUNCH_PORT_IN_USE, PS_LAUNCH_STOPPED, ps_launch_cmd, ps_launch_conflict,
                   ps_launch_opts, ps_launch_result, ps_log_summary)
from .common import (EXIT_BAD_INPUT, EXIT_CLUSTER, EXIT_FINDING, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_NO_DRIVER,
                     EXIT_NOT_INSTALLED, EXIT_OK, EXIT_USAGE, PLAN_SCHEMA, SCHEMA, STATUSES, ClusterLost, ClusterRefused)
from .driver import ray_available
from .launching import launch
from .nics import parse_topo_nics
from .output import plan_text, report_text, write_atomic
from .planning import plan, runtime_env_vars
from .report import build_report, gather, load_report

__all__ = [
    "SCHEMA", "PLAN_SCHEMA", "STATUSES",
    "EXIT_OK", "EXIT_FINDING", "EXIT_USAGE", "EXIT_BAD_INPUT", "EXIT_NO_DRIVER", "EXIT_INTERNAL", "EXIT_CLUSTER",
    "EXIT_NOT_INSTALLED", "EXIT_INTERRUPTED",
    "ClusterLost", "ClusterRefused",
    "ray_available", "parse_topo_nics", "build_report", "gather", "load_report",
    "plan", "runtime_env_vars", "launch", "write_atomic", "report_text", "plan_text", "main",
    "ps_log_summary", "ps_launch_result", "ps_launch_opts", "ps_launch_conflict", "ps_launch_cmd",
    "PS_LAUNCH_MAX_ARGV", "PS_LAUNCH_MAX_CONFLICTS", "PS_LAUNCH_EXITED", "PS_LAUNCH_STOPPED", "PS_LAUNCH_INTERRUPTED",
    "PS_LAUNCH_HUNG", "PS_LAUNCH_NOT_FOUND", "PS_LAUNCH_PORT_IN_USE",
    "__version__",
]
