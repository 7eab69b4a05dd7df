"""ctypes declarations of the libpeerscope calls that planning and launching across nodes
use (``ps_plan_make_cluster``, ``ps_launch_*``, ``ps_log_suggest``) and their structs."""

import ctypes
from ctypes import POINTER, Structure, c_bool, c_char, c_char_p, c_double, c_int, c_int64, c_uint32, c_void_p

from .. import _lib
from .._lib import lib


_lib_declared = False


class ps_log_summary(Structure):
    _fields_ = [
        ("custom_all_reduce", c_int),
        ("custom_all_reduce_reason", c_char * 256),
        ("nccl_transports", c_uint32),
        ("kv_cache_tokens", c_int64),
        ("max_concurrency", c_double),
        ("concurrency_tokens", c_int64),
        ("kv_available_gib", c_double),
        ("failure", c_int),
        ("failure_line", c_char * 512),
        ("heads", c_int),
        ("heads_tp", c_int),
        ("kv_needed_gib", c_double),
        ("estimated_max_len", c_int64),
        ("ready", c_bool),
    ]


class ps_launch_result(Structure):
    _fields_ = [
        ("outcome", c_int),
        ("came_up", c_bool),
        ("up_after_s", c_double),
        ("exit_code", c_int),
        ("url", c_char * 128),
        ("summary", ps_log_summary),
    ]


_ON_LINE = ctypes.CFUNCTYPE(None, c_void_p, c_int, c_char_p)
_ON_READY = ctypes.CFUNCTYPE(None, c_void_p, POINTER(ps_launch_result))

PS_LAUNCH_MAX_ARGV = 320
PS_LAUNCH_MAX_CONFLICTS = 8


class ps_launch_opts(_lib.Sized):
    _fields_ = [
        ("size", ctypes.c_size_t),
        ("vllm", c_char_p),
        ("host", c_char_p),
        ("port", c_int),
        ("extra", POINTER(c_char_p)),
        ("extra_count", c_int),
        ("health_timeout_s", c_int),
        ("stop_grace_s", c_int),
        ("nccl_debug", c_bool),
        ("stop", POINTER(c_int)),
        ("on_line", _ON_LINE),
        ("on_ready", _ON_READY),
        ("user", c_void_p),
    ]


class ps_launch_conflict(Structure):
    _fields_ = [("flag", c_char * 64), ("plan_value", c_char * 128), ("user_value", c_char * 128)]


class ps_launch_cmd(Structure):
    _fields_ = [
        ("argc", c_int),
        ("argv", c_char_p * (PS_LAUNCH_MAX_ARGV + 1)),
        ("envc", c_int),
        ("env", c_char_p * (_lib.PS_PLAN_MAX_ITEMS + 2)),
        ("conflict_count", c_int),
        ("conflicts", ps_launch_conflict * PS_LAUNCH_MAX_CONFLICTS),
    ]


PS_LAUNCH_EXITED, PS_LAUNCH_STOPPED, PS_LAUNCH_INTERRUPTED, PS_LAUNCH_HUNG, PS_LAUNCH_NOT_FOUND, PS_LAUNCH_PORT_IN_USE = range(6)


def _declare() -> None:
    global _lib_declared
    if _lib_declared:
        return
    rp = POINTER(_lib.ps_report)
    table = [
        ("ps_plan_make_cluster", c_int,
         [c_void_p, POINTER(rp), c_int, POINTER(_lib.ps_plan_request), POINTER(POINTER(_lib.ps_plan))]),
        ("ps_launch_argv", c_int,
         [c_void_p, POINTER(_lib.ps_plan), POINTER(ps_launch_opts), POINTER(POINTER(ps_launch_cmd))]),
        ("ps_launch_cmd_free", None, [POINTER(ps_launch_cmd)]),
        ("ps_launch_run", c_int,
         [c_void_p, POINTER(ps_launch_cmd), POINTER(ps_launch_opts), POINTER(POINTER(ps_launch_result))]),
        ("ps_launch_result_free", None, [POINTER(ps_launch_result)]),
        ("ps_log_suggest", None, [POINTER(ps_log_summary), POINTER(_lib.ps_plan), c_char_p, ctypes.c_size_t]),
    ]
    for name, restype, argtypes in table:
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    _lib_declared = True
