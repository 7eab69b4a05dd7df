"""Launching: ``vllm serve`` on the head with the plan, Ray's executor, the plan's
environment for every Ray worker (the job's runtime environment), and the /health watch of
``ps_launch_run``."""

import contextlib
import ctypes
import json
import os
import signal
import threading
from ctypes import POINTER, c_char_p, c_int
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from .. import _lib
from .._lib import Ctx, lib
from ..errors import Error, InvalidArgument
from .clib import (_ON_LINE, _ON_READY, PS_LAUNCH_HUNG, PS_LAUNCH_INTERRUPTED, PS_LAUNCH_NOT_FOUND, PS_LAUNCH_PORT_IN_USE,
                   PS_LAUNCH_STOPPED, ps_launch_cmd, ps_launch_opts, ps_launch_result, ps_log_summary)
from .common import EXIT_FINDING, EXIT_INTERRUPTED, EXIT_NOT_INSTALLED, EXIT_OK, ClusterRefused
from .planning import _make_plan, _plan_text, runtime_env_vars


# ---- launching --------------------------------------------------------------------------------


def _launch_environment(address: Optional[str], env_vars: Dict[str, str]) -> Dict[str, str]:
    """What is added to vLLM's environment so that its Ray executor connects to the cluster
    and every worker it starts gets the plan's variables: RAY_ADDRESS, and the job's
    runtime environment in RAY_JOB_CONFIG_JSON_ENV_VAR (merged with one already set, as
    inside a `ray job submit` entrypoint). RAY_OVERRIDE_JOB_RUNTIME_ENV=1 lets vLLM's own
    ray.init(runtime_env=...) combine with it instead of failing on a shared key."""
    job: Dict[str, Any] = {}
    existing = os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR")
    if existing:
        try:
            job = json.loads(existing) or {}
        except ValueError:
            job = {}
    rt = dict(job.get("runtime_env") or {})
    merged = dict(rt.get("env_vars") or {})
    merged.update(env_vars)
    rt["env_vars"] = merged
    job["runtime_env"] = rt
    out = {"RAY_JOB_CONFIG_JSON_ENV_VAR": json.dumps(job, sort_keys=True), "RAY_OVERRIDE_JOB_RUNTIME_ENV": "1"}
    if address and address != "auto":
        out["RAY_ADDRESS"] = address
    return out


def _display(word: str) -> str:
    safe = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=,:+@%")
    if word and all(ch in safe for ch in word):
        return word
    return "'" + word.replace("'", "'\\''") + "'"


def _summary_lines(s: ps_log_summary, plan_c: _lib.ps_plan) -> List[str]:
    lines = ["Start-up summary:"]
    if s.custom_all_reduce < 0:
        lines.append("  custom all-reduce: not stated (one GPU, or vLLM did not say)")
    else:
        reason = s.custom_all_reduce_reason.decode("utf-8", "replace")
        lines.append("  custom all-reduce: %s%s" % ("on" if s.custom_all_reduce else "off", " (%s)" % reason if reason else ""))
    if s.nccl_transports:
        lines.append("  NCCL transport:%s%s%s" % (" P2P/IPC" if s.nccl_transports & 1 else "", " SHM" if s.nccl_transports & 2 else "",
                                                 " NET" if s.nccl_transports & 4 else ""))
    else:
        lines.append("  NCCL transport: not logged (--nccl-debug sets NCCL_DEBUG=INFO)")
    if s.kv_cache_tokens >= 0:
        lines.append("  KV cache: %d tokens (planned %d)" % (s.kv_cache_tokens, plan_c.kv_tokens))
    if s.max_concurrency >= 0:
        lines.append("  max concurrency: %.2fx at %d tokens per request" % (s.max_concurrency, s.concurrency_tokens))
    if s.failure:
        hint = ctypes.create_string_buffer(1024)
        lib.ps_log_suggest(ctypes.byref(s), ctypes.byref(plan_c), hint, len(hint))
        lines.append("  failure: %s" % s.failure_line.decode("utf-8", "replace"))
        lines.append("  suggestion: %s" % hint.value.decode("utf-8", "replace"))
    return lines


def launch(cluster: Dict[str, Any], model: str, allow_partial: bool = False, model_size_gb: Optional[float] = None,
           params_b: Optional[float] = None, dtype: Optional[str] = None, ray_address: Optional[str] = None,
           vllm: Optional[str] = None, host: Optional[str] = None, port: int = 0, timeout_s: int = 0,
           stop_grace_s: int = 0, nccl_debug: bool = False, extra_args: Sequence[str] = (), dry_run: bool = False,
           on_line: Optional[Callable[[str], None]] = None, stop: Optional[threading.Event] = None,
           **settings: Any) -> Dict[str, Any]:
    """Plans over the healthy nodes of ``cluster`` (as :func:`plan`) and starts ``vllm serve``
    on this machine (the head) with the plan: ``--distributed-executor-backend ray`` (``mp``
    when the model fits the head alone), the plan's arguments and environment, RAY_ADDRESS,
    and the plan's environment for every Ray worker through the job's runtime environment.
    Then waits for ``/health`` and stays until vLLM exits or ``stop`` is set, exactly as
    ``peerscope launch`` (``ps_launch_run``: own process group, SIGTERM then SIGKILL after
    ``stop_grace_s``).

    ``model`` is a Hugging Face directory or a name for vLLM (then ``model_size_gb`` or
    ``params_b`` is needed). ``on_line`` gets every log line (``"[vllm] ..."`` and
    ``"[peerscope] ..."``), default print. Returns a dict: ``outcome`` (``exited``,
    ``stopped``, ``interrupted``, ``hung``, ``not_found``, ``port_in_use``, ``dry_run``),
    ``exit_code`` (the code ``peerscope cluster launch`` exits with), ``came_up``, ``url``,
    ``argv``, ``env`` (added to vLLM's environment), ``runtime_env``, ``plan``, ``summary``.
    """
    emit = on_line or (lambda line: print(line, flush=True))
    is_dir = _model_is_dir(model, model_size_gb, params_b)
    address = ray_address or cluster.get("ray_address")
    p, healthy, excluded = _make_plan(cluster, allow_partial, model if is_dir else None, model_size_gb, params_b, dtype,
                                      settings, None if is_dir else model)
    if not p.feasible:
        raise ClusterRefused("nothing to launch: %s" % p.summary.decode("utf-8", "replace"))
    pj = json.loads(_plan_text(p, _lib.PS_PLAN_JSON))
    env_vars = runtime_env_vars(pj.get("env") or [], nccl_debug)
    # A plan on one node (the model fits the head) runs without Ray: nothing to connect to.
    added = _launch_environment(address, env_vars) if p.node_count > 1 else {}
    _announce_nodes(emit, cluster, healthy, excluded)
    stop_flag = c_int(0)
    opts = _launch_opts(vllm, host, port, extra_args, timeout_s, stop_grace_s, nccl_debug, stop_flag)
    cmd = _launch_cmd(p, opts)
    try:
        argv = [cmd.argv[i].decode() for i in range(cmd.argc)]
        env_list = [cmd.env[i].decode() for i in range(cmd.envc)] + ["%s=%s" % kv for kv in sorted(added.items())]
        _warn_conflicts(emit, cmd)
        result: Dict[str, Any] = {"argv": argv, "env": env_list, "runtime_env": {"env_vars": env_vars}, "plan": pj,
                                  "nodes": [n["name"] for n in healthy], "excluded": [n["name"] for n in excluded],
                                  "came_up": False, "url": None}
        shown = " \\\n  ".join([_display(e) for e in env_list] + [" ".join(_display(a) for a in argv)])
        if dry_run:
            emit("# %s" % p.summary.decode("utf-8", "replace"))
            emit(shown)
            result.update(outcome="dry_run", exit_code=EXIT_OK)
            return result
        emit("[peerscope] plan: %s" % p.summary.decode("utf-8", "replace"))
        emit("[peerscope] starting: %s" % shown)
        res = _run_vllm(cmd, opts, p, emit, added, stop_flag, stop)
        result.update(_outcome_fields(res))
        _report_end(emit, res, p, argv, result["exit_code"])
        return result
    finally:
        lib.ps_launch_cmd_free(ctypes.byref(cmd))


def _model_is_dir(model: str, model_size_gb: Optional[float], params_b: Optional[float]) -> bool:
    """Whether ``model`` is a directory; a directory's size comes from its files, a name's must be given."""
    is_dir = os.path.isdir(model)
    if is_dir and (model_size_gb is not None or params_b is not None):
        raise InvalidArgument("%s is a model directory: its size comes from its files, drop model_size_gb / params_b" % model)
    if not is_dir and model_size_gb is None and params_b is None:
        raise InvalidArgument("'%s' is not a directory: it goes to vLLM as a model name, and peerscope needs its size "
                              "(--model-size-gb X or --params-b N)" % model)
    return is_dir


def _announce_nodes(emit: Callable[[str], None], cluster: Dict[str, Any], healthy: List[Dict[str, Any]],
                    excluded: List[Dict[str, Any]]) -> None:
    """The nodes left out, and a note when vLLM's engine (here) is not the plan's first node."""
    for n in excluded:
        emit("[peerscope] left out %s: %s (%s)" % (n.get("name"), n.get("status"), n.get("reason")))
    local = cluster.get("driver_ip")
    head = healthy[0]
    if local and head.get("ip") and local != head.get("ip"):
        emit("[peerscope] note: vLLM's engine runs on this machine (%s) and the plan's first node is %s" % (local, head["name"]))


def _launch_opts(vllm: Optional[str], host: Optional[str], port: int, extra_args: Sequence[str], timeout_s: int,
                 stop_grace_s: int, nccl_debug: bool, stop_flag: c_int) -> ps_launch_opts:
    """ps_launch_opts without the callbacks (the struct keeps the extra arguments and the
    stop flag alive: ctypes holds them in its _objects)."""
    extras = [str(a) for a in extra_args]
    c_extra = (c_char_p * max(1, len(extras)))(*[a.encode() for a in extras])
    opts = ps_launch_opts()
    opts.vllm = vllm.encode() if vllm else None
    opts.host = host.encode() if host else None
    opts.port = int(port or 0)
    opts.extra = ctypes.cast(c_extra, POINTER(c_char_p))
    opts.extra_count = len(extras)
    opts.health_timeout_s = int(timeout_s or 0)
    opts.stop_grace_s = int(stop_grace_s or 0)
    opts.nccl_debug = bool(nccl_debug)
    opts.stop = ctypes.pointer(stop_flag)
    return opts


def _launch_cmd(p: _lib.ps_plan, opts: ps_launch_opts) -> ps_launch_cmd:
    """vLLM's command line and environment from the plan (ps_launch_argv): the library's
    struct itself (its strings are the library's too); the caller frees it with ps_launch_cmd_free."""
    out = POINTER(ps_launch_cmd)()
    with Ctx() as ctx:
        st = lib.ps_launch_argv(ctx.ptr, ctypes.byref(p), ctypes.byref(opts), ctypes.byref(out))
        if st != 0:
            raise InvalidArgument(ctx.error() or "ps_launch_argv failed")
    return out.contents


def _warn_conflicts(emit: Callable[[str], None], cmd: ps_launch_cmd) -> None:
    for i in range(cmd.conflict_count):
        c = cmd.conflicts[i]
        emit("[peerscope] %s %s (after --) contradicts the plan's %s %s; your value wins" % (
            c.flag.decode(), c.user_value.decode(), c.flag.decode(), c.plan_value.decode()))


def _callbacks(emit: Callable[[str], None], p: _lib.ps_plan) -> Tuple[Any, Any]:
    """ps_launch_run's on_line (every log line, tagged) and on_ready (the start-up summary)."""
    def line_cb(_user, stream, text):
        emit("%s %s" % ("[peerscope]" if stream == 0 else "[vllm]", (text or b"").decode("utf-8", "replace")))

    def ready_cb(_user, res_p):
        r = res_p.contents
        for ln in _summary_lines(r.summary, p):
            emit(ln)
        emit("[peerscope] serving %s at %s/v1 (up after %.1f s); Ctrl-C stops it" % (
            p.model_arg.decode("utf-8", "replace"), r.url.decode(), r.up_after_s))

    return _ON_LINE(line_cb), _ON_READY(ready_cb)


@contextlib.contextmanager
def _environment_added(added: Dict[str, str]) -> Iterator[None]:
    """This process's environment with ``added`` (vLLM inherits it), restored afterwards."""
    saved = {k: os.environ.get(k) for k in added}
    os.environ.update(added)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def _signals_stop(stop_flag: c_int) -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP set the stop flag (only the main thread may take signals)."""
    handlers = {}
    if threading.current_thread() is threading.main_thread():
        def on_signal(_sig, _frame):
            stop_flag.value = 1
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            handlers[sig] = signal.signal(sig, on_signal)
    try:
        yield
    finally:
        for sig, h in handlers.items():
            signal.signal(sig, h)


def _run_vllm(cmd: ps_launch_cmd, opts: ps_launch_opts, p: _lib.ps_plan, emit: Callable[[str], None],
              added: Dict[str, str], stop_flag: c_int, stop: Optional[threading.Event]) -> ps_launch_result:
    """ps_launch_run on a thread of its own, so that this one takes the signals and watches
    ``stop``; raises Error when it fails."""
    on_line_c, on_ready_c = _callbacks(emit, p)  # held here for the whole run (opts holds them too)
    opts.on_line = on_line_c
    opts.on_ready = on_ready_c
    res = POINTER(ps_launch_result)()
    status = [None]
    errors: List[str] = []

    def run() -> None:
        with Ctx() as c2:
            status[0] = lib.ps_launch_run(c2.ptr, ctypes.byref(cmd), ctypes.byref(opts), ctypes.byref(res))
            if status[0] != 0:
                errors.append(c2.error())

    worker = threading.Thread(target=run, name="peerscope-launch", daemon=True)
    with _environment_added(added), _signals_stop(stop_flag):
        worker.start()
        while worker.is_alive():
            worker.join(0.2)
            if stop is not None and stop.is_set():
                stop_flag.value = 1
    if status[0] != 0:
        raise Error(errors[0] if errors else "ps_launch_run failed")
    return _lib.take(res, ps_launch_result, lib.ps_launch_result_free)


def _outcome_fields(res: ps_launch_result) -> Dict[str, Any]:
    """What the launch result adds: the outcome, the exit code of ``peerscope cluster launch``, and vLLM's start-up."""
    code = {PS_LAUNCH_STOPPED: EXIT_OK, PS_LAUNCH_INTERRUPTED: EXIT_INTERRUPTED, PS_LAUNCH_HUNG: EXIT_FINDING,
            PS_LAUNCH_NOT_FOUND: EXIT_NOT_INSTALLED, PS_LAUNCH_PORT_IN_USE: EXIT_FINDING}.get(res.outcome, res.exit_code)
    return dict(outcome=["exited", "stopped", "interrupted", "hung", "not_found", "port_in_use"][res.outcome],
                exit_code=code, came_up=bool(res.came_up), url=res.url.decode() or None,
                up_after_s=res.up_after_s, vllm_exit_code=res.exit_code,
                summary={"custom_all_reduce": res.summary.custom_all_reduce,
                         "failure_line": res.summary.failure_line.decode("utf-8", "replace") or None,
                         "kv_cache_tokens": res.summary.kv_cache_tokens})


def _report_end(emit: Callable[[str], None], res: ps_launch_result, p: _lib.ps_plan, argv: List[str], code: int) -> None:
    """The closing lines: why vLLM could not start, or how its run went."""
    if res.outcome == PS_LAUNCH_NOT_FOUND:
        emit("peerscope cluster launch: '%s' not found: install vLLM (pip install vllm) or give --vllm PATH" % argv[0])
    elif res.outcome == PS_LAUNCH_PORT_IN_USE:
        emit("peerscope cluster launch: %s: choose another with --port" % res.summary.failure_line.decode("utf-8", "replace"))
    else:
        if not res.came_up or res.summary.failure:
            for ln in _summary_lines(res.summary, p):
                emit(ln)
        if res.came_up:
            emit("[peerscope] served %s/v1 (%s), up after %.1f s; %s" % (
                res.url.decode(), p.model_arg.decode("utf-8", "replace"), res.up_after_s,
                "stopped on request" if res.outcome == PS_LAUNCH_STOPPED else "vLLM has exited"))
        else:
            emit("[peerscope] vLLM %s without answering /health (exit %d)" % (
                "was stopped at the deadline" if res.outcome == PS_LAUNCH_HUNG else "ended", code))
