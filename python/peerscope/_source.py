"""Getting a topology report the way the `peerscope` CLI does (apps/cli/common.c): a fixture
through the fake drivers, the live driver, or, when no driver is installed, the bundled
example machine (and a notice saying so); then verification in the worker process."""

import contextlib
import ctypes
import os
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from . import _lib
from ._lib import Ctx, lib
from .errors import ERR_NO_DRIVER, InvalidArgument, NotFound, error_for

EXAMPLE_FIXTURE = "example-4x-a100.topo"


@contextlib.contextmanager
def scoped_env(changes: Dict[str, str]) -> Iterator[None]:
    """Sets environment variables for the duration of a block (the C library and the worker
    it spawns read them), then restores the previous values."""
    saved = {name: os.environ.get(name) for name in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class Report:
    """Owns a ps_report* and the environment it was made in (fixture playback), freed when
    garbage collected or closed."""

    def __init__(self, ptr: "ctypes._Pointer", env: Dict[str, str], notice: str) -> None:
        self.ptr = ptr
        self.env = env  # PEERSCOPE_DRIVER_DIR / PEERSCOPE_FIXTURE of a played-back machine
        self.notice = notice

    @property
    def r(self) -> _lib.ps_report:
        return self.ptr.contents

    def close(self) -> None:
        if self.ptr:
            lib.ps_report_free(self.ptr)
            self.ptr = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: lib may be gone
            pass

    def pair(self, a: int, b: int) -> Optional[_lib.ps_pair]:
        p = lib.ps_report_pair(self.ptr, a, b)
        return p.contents if p else None

    def usable(self, a: int, b: int) -> bool:
        p = lib.ps_report_pair(self.ptr, a, b)
        return bool(p) and bool(lib.ps_pair_usable(self.ptr, p))

    def failed(self, a: int, b: int) -> bool:
        p = lib.ps_report_pair(self.ptr, a, b)
        return bool(p) and bool(lib.ps_pair_failed(self.ptr, p))


def int_array(values: Optional[Sequence[int]]) -> Tuple[Optional["ctypes.Array[ctypes.c_int]"], int]:
    if not values:
        return None, 0
    arr = (ctypes.c_int * len(values))(*values)
    return arr, len(values)


def _fixture_env(fixture: str) -> Dict[str, str]:
    if not os.path.isfile(fixture):
        raise NotFound("fixture %s does not exist" % fixture)
    env = {"PEERSCOPE_FIXTURE": os.path.abspath(fixture)}
    if not os.environ.get("PEERSCOPE_DRIVER_DIR"):
        env["PEERSCOPE_DRIVER_DIR"] = _lib.bundled_path(_lib.PS_BUNDLED_FAKE_DRIVERS)
    return env


def _probe(env: Dict[str, str]) -> Tuple[int, str, "ctypes._Pointer"]:
    out = ctypes.POINTER(_lib.ps_report)()
    with Ctx() as ctx, scoped_env(env):
        status = lib.ps_probe(ctx.ptr, None, ctypes.byref(out))
        return status, ctx.error(), out


def _apply_visible(report: Report, env: Dict[str, str]) -> None:
    """Only the GPUs the process's CUDA_VISIBLE_DEVICES allows (CUDA itself says which, in a
    worker); the notice says so."""
    cvd = os.environ.get("CUDA_VISIBLE_DEVICES")
    if cvd is None:
        return
    with Ctx() as ctx, scoped_env(env):
        status = lib.ps_report_apply_visible(ctx.ptr, report.ptr, ctypes.byref(_lib.ps_visible_opts()))
        if status != 0:
            report.close()
            ctx.check(status, "CUDA_VISIBLE_DEVICES")
    allowed = (ctypes.c_int * max(1, report.r.gpu_count))()
    n = lib.ps_report_allowed_gpus(report.ptr, allowed, report.r.gpu_count)
    line = "peerscope: using the %d GPU%s CUDA_VISIBLE_DEVICES allows: %s (nvidia-smi's numbers; all_gpus=True for the whole machine)." % (
        n, "" if n == 1 else "s", ",".join(str(allowed[i]) for i in range(n)))
    report.notice = (report.notice + "\n" + line) if report.notice else line


def load_report(
    fixture: Optional[str] = None,
    topology: Optional[str] = None,
    live: bool = False,
    verify: bool = True,
    gpus: Optional[List[int]] = None,
    timeout_ms: int = 0,
    refresh: bool = False,
    cache_dir: Optional[str] = None,
    all_gpus: bool = False,
) -> Report:
    """The report a GPUManager works on. See GPUManager for the meaning of each option."""
    if topology:
        out = ctypes.POINTER(_lib.ps_report)()
        with Ctx() as ctx:
            ctx.check(lib.ps_import_topology(ctx.ptr, topology.encode(), ctypes.byref(out)))
        return Report(out, {}, "")

    env: Dict[str, str] = {}
    notice = ""
    fixture = fixture or os.environ.get("PEERSCOPE_FIXTURE") or None
    if fixture and live:
        raise InvalidArgument("live and fixture exclude each other")
    if fixture:
        env = _fixture_env(fixture)
    status, detail, out = _probe(env)
    if status == ERR_NO_DRIVER and not live and not fixture and not os.environ.get("PEERSCOPE_DRIVER_DIR"):
        example = os.path.join(_lib.bundled_path(_lib.PS_BUNDLED_FIXTURES), EXAMPLE_FIXTURE)
        env = _fixture_env(example)
        why = detail.split(": ", 1)[1] if ": " in detail else detail
        notice = (
            "peerscope: no NVIDIA driver on this machine (%s); running on the bundled example "
            "machine through peerscope's fake drivers, not on this computer's GPUs (--live "
            "refuses this)." % why
        )
        status, detail, out = _probe(env)
    if status != 0:
        raise error_for(status, detail or lib.ps_status_str(status).decode())
    report = Report(out, env, notice)
    if not all_gpus:
        _apply_visible(report, env)
    count = report.r.gpu_count
    for g in gpus or []:
        if not 0 <= g < count:
            report.close()
            raise InvalidArgument(
                "GPU %d does not exist (this machine has %d GPU%s)" % (g, count, "" if count == 1 else "s")
            )
    if verify:
        opts = _lib.ps_verify_opts()
        opts.timeout_ms = int(timeout_ms or 0)
        opts.refresh = bool(refresh)
        opts.cache_dir = cache_dir.encode() if cache_dir else None
        arr, n = int_array(gpus)
        opts.gpus = ctypes.cast(arr, ctypes.POINTER(ctypes.c_int)) if arr is not None else None
        opts.gpu_count = n
        with Ctx() as ctx, scoped_env(env):
            status = lib.ps_verify(ctx.ptr, report.ptr, ctypes.byref(opts))
            if status != 0:
                report.close()
                ctx.check(status, "verification")
    return report
