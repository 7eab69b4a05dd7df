"""The command line (``python -m peerscope.cluster``, also reached as ``peerscope cluster``):
argparse, :func:`main` and the hidden ``_driver`` command that the driver child runs."""

import argparse
import json
import sys
from typing import Any, Dict, List, Optional, Sequence

from .. import _lib
from ..errors import Error, InvalidArgument, NotAvailable
from .common import (EXIT_BAD_INPUT, EXIT_CLUSTER, EXIT_FINDING, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_NO_DRIVER,
                     EXIT_NOT_INSTALLED, EXIT_OK, EXIT_USAGE, ClusterLost, ClusterRefused, _first_lines)
from .driver import _driver, ray_available
from .launching import launch
from .output import plan_text, report_text, write_atomic
from .planning import plan
from .report import gather, load_report


# ---- command line -----------------------------------------------------------------------------


class _Usage(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _Usage(message)


_TYPES = {"integer": int, "number": float}


def _add_plan_options(p: argparse.ArgumentParser) -> None:
    """The plan request's options from the library's one table (as `peerscope plan` has them);
    the library's parser checks the values (peerscope._lib.PlanInput)."""
    for f in _lib.plan_fields():
        if f["name"] == "gpus":  # one node's GPUs: not for a cluster
            continue
        kw: Dict[str, Any] = {"help": f["help"], "dest": "model" if f["name"] == "model_dir" else f["name"]}
        if f["type"] == "boolean":
            kw["action"] = "store_true"
        else:
            kw.update(metavar=f["metavar"], type=_TYPES.get(f["type"], str))
            if f["choices"]:
                kw["choices"] = f["choices"]
        p.add_argument(f["flag"], **kw)


def _add_cluster_options(p: argparse.ArgumentParser, report: bool = True) -> None:
    p.add_argument("--ray-address", metavar="ADDR", help="the Ray cluster (host:port of the head's GCS, or auto)")
    if report:
        p.add_argument("--report", metavar="FILE", help="a cluster report from `peerscope cluster topo --out` instead of gathering")
    p.add_argument("--deadline", type=float, default=60.0, metavar="S", help="seconds for every node to answer (default 60)")
    p.add_argument("--connect-timeout", type=float, default=60.0, metavar="S", help="seconds to connect to Ray (default 60)")
    p.add_argument("--allow-partial", action="store_true", help="go on with the healthy nodes when some are not")
    p.add_argument("--peerscope-cli", metavar="PATH", help="the peerscope executable on the nodes (default: PATH, then the package's)")
    p.add_argument("--node-ip", metavar="IP", help="this machine's address in the Ray cluster, when Ray guesses wrong")


def _parser() -> _Parser:
    top = _Parser(prog="peerscope cluster", description="Several machines over the Ray cluster you already run (docs/cluster.md).")
    sub = top.add_subparsers(dest="command", metavar="{topo,plan,launch}")
    t = sub.add_parser("topo", help="verified check on every node, one cluster report")
    _add_cluster_options(t, report=False)
    t.add_argument("--json", action="store_true", help="the peerscope.cluster/1 report on stdout")
    t.add_argument("--out", metavar="FILE", help="also write the JSON report to FILE (atomically)")
    pl = sub.add_parser("plan", help="plan vLLM on the healthy nodes (one node when the model fits one)")
    _add_cluster_options(pl)
    _add_plan_options(pl)
    pl.add_argument("--json", action="store_true")
    pl.add_argument("--out", metavar="FILE", help="also write the JSON plan to FILE (atomically)")
    la = sub.add_parser("launch", help="vllm serve on the head with the plan, Ray executor, health watch")
    la.add_argument("model_pos", nargs="?", metavar="MODEL", help="a model directory or a name for vLLM")
    _add_cluster_options(la)
    _add_plan_options(la)
    la.add_argument("--port", type=int, default=0)
    la.add_argument("--host")
    la.add_argument("--vllm", metavar="PATH")
    la.add_argument("--timeout", type=int, default=0, metavar="S", help="seconds to wait for /health (default 900)")
    la.add_argument("--stop-grace", type=int, default=0, metavar="S")
    la.add_argument("--nccl-debug", action="store_true")
    la.add_argument("--dry-run", action="store_true")
    dr = sub.add_parser("_driver")  # no help: not listed
    dr.add_argument("--ray-address", required=True)
    dr.add_argument("--deadline", type=float, required=True)
    dr.add_argument("--peerscope-cli")
    dr.add_argument("--raw-out", required=True)
    dr.add_argument("--node-ip")
    dr.add_argument("--connected-file")
    return top


def _settings(a: argparse.Namespace) -> Dict[str, Any]:
    names = [n for n in _lib.plan_field_names("plan") if n != "gpus"]
    return {k: getattr(a, k) for k in names if getattr(a, k, None) not in (None, 0, False)}


def _cluster_for(a: argparse.Namespace) -> Dict[str, Any]:
    if getattr(a, "report", None):
        return load_report(a.report)
    if not a.ray_address:
        raise _Usage("give --ray-address ADDR (or --report FILE)")
    return gather(a.ray_address, a.deadline, a.allow_partial, a.peerscope_cli, a.connect_timeout, a.node_ip)


def _error_exit(exc: Error) -> int:
    if isinstance(exc, ClusterLost):
        return EXIT_CLUSTER
    if isinstance(exc, NotAvailable):
        return EXIT_NOT_INSTALLED
    if isinstance(exc, ClusterRefused):
        return EXIT_FINDING
    return {1: EXIT_USAGE, 5: EXIT_BAD_INPUT, 6: EXIT_BAD_INPUT, 3: EXIT_NO_DRIVER, 4: EXIT_NO_DRIVER, 10: EXIT_NO_DRIVER}.get(exc.status, EXIT_INTERNAL)


def _run_driver_command(a: argparse.Namespace) -> int:
    if not ray_available():
        print("peerscope cluster: Ray is not installed in %s (pip install 'peerscope[cluster]')" % sys.executable, file=sys.stderr)
        return EXIT_NOT_INSTALLED
    try:
        raw = _driver(a.ray_address, a.deadline, a.peerscope_cli, a.node_ip, a.connected_file)
    except Exception as exc:  # noqa: BLE001 - the parent reports it as the cluster's error
        print("peerscope cluster: %s: %s" % (type(exc).__name__, _first_lines(str(exc), 2)), file=sys.stderr)
        return EXIT_CLUSTER
    write_atomic(a.raw_out, json.dumps(raw))
    return EXIT_OK


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    extra: List[str] = []
    if "--" in args:
        cut = args.index("--")
        args, extra = args[:cut], args[cut + 1:]
    parser = _parser()
    try:
        a = parser.parse_args(args)
        if a.command is None:
            parser.print_help()
            return EXIT_USAGE
        if a.command == "_driver":
            return _run_driver_command(a)
        if extra and a.command != "launch":
            raise _Usage("arguments after -- are for `cluster launch` (vLLM's own options)")
        if a.deadline <= 0:
            raise _Usage("--deadline must be positive")
        if a.command == "topo":
            if not a.ray_address:
                raise _Usage("give --ray-address ADDR (the head's host:port, or auto)")
            report = gather(a.ray_address, a.deadline, a.allow_partial, a.peerscope_cli, a.connect_timeout, a.node_ip)
            text = json.dumps(report, indent=2) + "\n"
            if a.out:
                write_atomic(a.out, text)
            sys.stdout.write(text if a.json else report_text(report))
            if not report["problems"]:
                return EXIT_OK
            return EXIT_OK if a.allow_partial and report["healthy"] else EXIT_FINDING
        if a.command == "plan":
            try:  # the library's rules (exactly one model source, ranges) before Ray is asked
                with _lib.PlanInput(dict(_settings(a), model_dir=a.model, model_size_gb=a.model_size_gb,
                                         params_b=a.params_b, dtype=a.dtype), flags=True) as given:
                    given.check()
            except InvalidArgument as exc:
                raise _Usage(str(exc))
            cluster = _cluster_for(a)
            result = plan(cluster, model_dir=a.model, model_size_gb=a.model_size_gb, allow_partial=a.allow_partial,
                          params_b=a.params_b, dtype=a.dtype, **_settings(a))
            text = json.dumps({k: v for k, v in result.items() if k != "text"}, indent=2) + "\n"
            if a.out:
                write_atomic(a.out, text)
            sys.stdout.write(text if a.json else plan_text(result))
            return EXIT_OK if result["feasible"] else EXIT_FINDING
        # launch
        model = a.model_pos or a.model
        if a.model_pos and a.model:
            raise _Usage("give MODEL or --model DIR, not both")
        if not model:
            raise _Usage("no model (peerscope cluster launch MODEL ...)")
        cluster = _cluster_for(a)
        result = launch(cluster, model, allow_partial=a.allow_partial, model_size_gb=a.model_size_gb, params_b=a.params_b,
                        dtype=a.dtype, ray_address=a.ray_address, vllm=a.vllm, host=a.host, port=a.port,
                        timeout_s=a.timeout, stop_grace_s=a.stop_grace, nccl_debug=a.nccl_debug, extra_args=extra,
                        dry_run=a.dry_run, **_settings(a))
        return int(result["exit_code"])
    except _Usage as exc:
        print("peerscope cluster: %s (see peerscope cluster %s --help)" % (exc, (args[:1] or [""])[0] if args and not args[0].startswith("-") else ""),
              file=sys.stderr)
        return EXIT_USAGE
    except Error as exc:
        print("peerscope cluster: %s" % exc.detail, file=sys.stderr)
        return _error_exit(exc)
    except KeyboardInterrupt:
        print("peerscope cluster: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
