"""ctypes bindings of libpeerscope: the library, its structs (mirrored field by field from
include/peerscope/*.h) and its functions. Private: use GPUManager / VLLMManager."""

import ctypes
import json
import os
from ctypes import (
    POINTER,
    Structure,
    c_bool,
    c_char,
    c_char_p,
    c_double,
    c_int,
    c_size_t,
    c_uint,
    c_uint8,
    c_uint32,
    c_uint64,
    c_void_p,
)
from pathlib import Path
from typing import Any, Dict, List, Optional

from ._version import __version__
from .errors import Error, error_for

#: PS_ABI_VERSION of the header these structs mirror; the library must report the same.
ABI_VERSION = 8

# Bits of ps_gpu.valid / ps_pair.valid / ps_model.valid.
PS_GPU_NAME = 1 << 0
PS_GPU_UUID = 1 << 1
PS_GPU_PCI_BUS_ID = 1 << 2
PS_GPU_MEMORY_TOTAL = 1 << 3
PS_GPU_MEMORY_FREE = 1 << 4
PS_GPU_COMPUTE_CAP = 1 << 5
PS_GPU_NUMA_NODE = 1 << 6
PS_GPU_CPU_AFFINITY = 1 << 7
PS_GPU_PCIE_CURRENT = 1 << 8
PS_GPU_PCIE_MAX = 1 << 9
PS_GPU_BAR1 = 1 << 10
PS_GPU_CUDA_ORDINAL = 1 << 11
PS_GPU_VISIBLE = 1 << 12

PS_PAIR_LINK = 1 << 0
PS_PAIR_NVLINK = 1 << 1
PS_PAIR_CLAIMS = 1 << 2
PS_PAIR_CUDA_CLAIM = 1 << 3
PS_PAIR_COPY_TIME = 1 << 4
PS_PAIR_CORRUPT_DETAIL = 1 << 5

PS_MODEL_WEIGHTS_EXACT = 1 << 0
PS_MODEL_PARAMS = 1 << 1
PS_MODEL_MAX_POSITIONS = 1 << 2

PS_SOURCE_NAMES = {0: "live", 1: "fixture", 2: "file"}
PS_VERDICT_OK = 1
PS_CLAIM_OK = 1
PS_BUNDLED_WORKER = 0
PS_BUNDLED_FAKE_DRIVERS = 1
PS_BUNDLED_FIXTURES = 2
PS_BUNDLED_MODELS = 3
PS_OBJECTIVES = {"throughput": 0, "latency": 1}
PS_PLAN_MAX_GPUS = 64
PS_PLAN_MAX_ITEMS = 24
PS_PLAN_MAX_ALTS = 8
PS_PLAN_TEXT, PS_PLAN_JSON, PS_PLAN_SHELL, PS_PLAN_ARGS, PS_PLAN_YAML = 0, 1, 2, 3, 4

_enum = c_int  # C enums are int-sized on the platforms peerscope supports


class ps_mode_result(Structure):
    _fields_ = [
        ("verdict", _enum),
        ("from_cache", c_bool),
        ("reason", c_char * 160),
        ("error_name", c_char * 48),
    ]


class ps_gpu(Structure):
    _fields_ = [
        ("valid", c_uint32),
        ("index", c_int),
        ("name", c_char * 96),
        ("uuid", c_char * 96),
        ("pci_bus_id", c_char * 32),
        ("memory_total_bytes", c_uint64),
        ("memory_free_bytes", c_uint64),
        ("cc_major", c_int),
        ("cc_minor", c_int),
        ("numa_node", c_int),
        ("cpu_affinity", c_char * 256),
        ("pcie_gen_current", c_int),
        ("pcie_width_current", c_int),
        ("pcie_gen_max", c_int),
        ("pcie_width_max", c_int),
        ("bar1_total_bytes", c_uint64),
        ("cuda_ordinal", c_int),
        ("local_verdict", _enum),
        ("local_reason", c_char * 160),
        ("visible_ordinal", c_int),
        ("local_sm", ps_mode_result),
        ("local_ipc", ps_mode_result),
    ]


class ps_pair(Structure):
    _fields_ = [
        ("valid", c_uint32),
        ("from_", c_int),
        ("to", c_int),
        ("link", _enum),
        ("nvlink_count", c_int),
        ("nvlink_version", c_int),
        ("nvswitch", c_bool),
        ("claim_read", _enum),
        ("claim_write", _enum),
        ("claim_nvlink", _enum),
        ("claim_atomics", _enum),
        ("cuda_can_access", c_bool),
        ("verdict", _enum),
        ("from_cache", c_bool),
        ("reason", c_char * 160),
        ("error_name", c_char * 48),
        ("corrupt_offset", c_uint64),
        ("corrupt_expected", c_uint8),
        ("corrupt_seen", c_uint8),
        ("copy_us", c_double),
        ("sm", ps_mode_result),
        ("ipc", ps_mode_result),
    ]


class ps_timings(Structure):
    _fields_ = [
        ("driver_init_ms", c_double),
        ("probe_ms", c_double),
        ("worker_spawn_ms", c_double),
        ("cuda_init_ms", c_double),
        ("contexts_ms", c_double),
        ("copies_ms", c_double),
        ("total_ms", c_double),
    ]


class ps_restart(Structure):
    _fields_ = [
        ("cause", _enum),
        ("from_", c_int),
        ("to", c_int),
        ("error_name", c_char * 48),
        ("reason", c_char * 160),
    ]


class ps_report(Structure):
    _fields_ = [
        ("source", _enum),
        ("origin", c_char * 512),
        ("machine", c_char * 128),
        ("hostname", c_char * 128),
        ("boot_id", c_char * 64),
        ("driver_version", c_char * 80),
        ("cuda_driver_version", c_int),
        ("nvml_version", c_char * 80),
        ("gpu_count", c_int),
        ("gpus", POINTER(ps_gpu)),
        ("pair_count", c_int),
        ("pairs", POINTER(ps_pair)),
        ("verified", c_bool),
        ("cache_used", c_bool),
        ("hang_workers", c_int),
        ("timings", ps_timings),
        ("cuda_visible_devices", c_char * 256),
        ("bench", c_void_p),  # struct ps_bench *: read through the report's JSON
        ("restart_count", c_int),
        ("restarts", POINTER(ps_restart)),
        ("modes", c_uint),
    ]


class Sized(Structure):
    """An option or request struct: its first field, size, is set to sizeof (PS_INIT)."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.size = ctypes.sizeof(self)


class ps_probe_opts(Sized):
    _fields_ = [("size", c_size_t), ("driver_dir", c_char_p), ("fixture", c_char_p)]


class ps_verify_opts(Sized):
    _fields_ = [
        ("size", c_size_t),
        ("timeout_ms", c_int),
        ("copy_bytes", c_size_t),
        ("refresh", c_bool),
        ("cache_dir", c_char_p),
        ("worker_path", c_char_p),
        ("driver_dir", c_char_p),
        ("gpus", POINTER(c_int)),
        ("gpu_count", c_int),
        ("fixture", c_char_p),
        ("modes", c_uint),
    ]


class ps_visible_opts(Sized):
    _fields_ = [
        ("size", c_size_t),
        ("worker_path", c_char_p),
        ("driver_dir", c_char_p),
        ("fixture", c_char_p),
        ("cuda_visible_devices", c_char_p),
        ("cuda_device_order", c_char_p),
    ]


class ps_bench_opts(Sized):
    _fields_ = [
        ("size", c_size_t),
        ("tests", c_uint),
        ("gpus", POINTER(c_int)),
        ("gpu_count", c_int),
        ("sizes", POINTER(c_uint64)),
        ("size_count", c_int),
        ("copy_bytes", c_uint64),
        ("iters", c_int),
        ("trials", c_int),
        ("quick", c_bool),
        ("timeout_ms", c_int),
        ("worker_path", c_char_p),
        ("driver_dir", c_char_p),
        ("nccl_path", c_char_p),
        ("progress", c_void_p),
        ("progress_user", c_void_p),
        ("stop", c_void_p),
        ("fixture", c_char_p),
    ]


#: PS_BENCH_TEST_* bits by name.
PS_BENCH_TESTS = {"copy": 1, "latency": 2, "allreduce": 4, "all": 7}


class ps_vision(Structure):
    _fields_ = [
        ("present", c_bool),
        ("depth", c_int),
        ("hidden_size", c_int),
        ("intermediate_size", c_int),
        ("num_heads", c_int),
        ("patch_size", c_int),
        ("spatial_merge_size", c_int),
        ("temporal_patch_size", c_int),
        ("in_channels", c_int),
        ("out_hidden_size", c_int),
        ("image_size", c_int),
        ("deepstack_layers", c_int),
        ("tokens_per_image", c_int),
        ("full_features", c_bool),
        ("num_pinpoints", c_int),
        ("pinpoints", (c_int * 2) * 32),
    ]


class ps_model(Structure):
    _fields_ = [
        ("valid", c_uint32),
        ("name", c_char * 128),
        ("architecture", c_char * 64),
        ("model_type", c_char * 64),
        ("num_layers", c_int),
        ("hidden_size", c_int),
        ("num_heads", c_int),
        ("num_kv_heads", c_int),
        ("head_dim", c_int),
        ("vocab_size", c_int),
        ("intermediate_size", c_int),
        ("max_position_embeddings", c_int),
        ("tied_embeddings", c_bool),
        ("num_experts", c_int),
        ("experts_per_token", c_int),
        ("dtype", c_char * 16),
        ("dtype_bytes", c_int),
        ("quantization", c_char * 32),
        ("weight_bytes", c_uint64),
        ("param_count", c_uint64),
        ("attention", _enum),
        ("kv_lora_rank", c_int),
        ("qk_rope_head_dim", c_int),
        ("sliding_window", c_int),
        ("sliding_layers", c_int),
        ("estimate_note", c_char * 256),
        ("attention_layers", c_int),
        ("vision", ps_vision),
    ]


class ps_plan_request(Sized):
    _fields_ = [
        ("size", c_size_t),
        ("model", POINTER(ps_model)),
        ("tp", c_int),
        ("pp", c_int),
        ("gpus", POINTER(c_int)),
        ("gpu_count", c_int),
        ("gpu_memory_utilization", c_double),
        ("max_model_len", c_int),
        ("max_num_seqs", c_int),
        ("kv_cache_dtype", c_char_p),
        ("reserve_gib", c_double),
        ("objective", _enum),
        ("model_path", c_char_p),
        ("vllm_version", c_char_p),
        ("enforce_eager", c_bool),
        ("max_num_batched_tokens", c_int),
        ("block_size", c_int),
        ("vllm_log", c_void_p),  # const ps_vllm_log *: opaque
        ("calibrations", c_void_p),  # const ps_vllm_calibration *const *: opaque
        ("calibration_count", c_int),
        ("vllm_version_note", c_char_p),
    ]


class ps_plan_item(Structure):
    _fields_ = [("name", c_char * 64), ("value", c_char * 256), ("why", c_char * 256)]


class ps_plan_option(Structure):
    _fields_ = [
        ("tp", c_int),
        ("pp", c_int),
        ("gpu_count", c_int),
        ("gpus", c_int * PS_PLAN_MAX_GPUS),
        ("feasible", c_bool),
        ("why", c_char * 256),
    ]


class ps_plan(Structure):
    _fields_ = [
        ("feasible", c_bool),
        ("summary", c_char * 512),
        ("tp", c_int),
        ("pp", c_int),
        ("gpu_count", c_int),
        ("gpus", c_int * PS_PLAN_MAX_GPUS),
        ("replicas", c_int),
        ("budget_bytes", c_uint64),
        ("weights_bytes", c_uint64),
        ("overhead_bytes", c_uint64),
        ("kv_bytes", c_uint64),
        ("kv_tokens", c_uint64),
        ("max_model_len", c_int),
        ("max_num_seqs", c_int),
        ("gpu_memory_utilization", c_double),
        ("custom_all_reduce", c_bool),
        ("pp_layer_partition", c_char * 256),
        ("env_count", c_int),
        ("env", ps_plan_item * PS_PLAN_MAX_ITEMS),
        ("arg_count", c_int),
        ("args", ps_plan_item * PS_PLAN_MAX_ITEMS),
        ("model_arg", c_char * 512),
        ("reason_count", c_int),
        ("reasons", (c_char * 256) * PS_PLAN_MAX_ITEMS),
        ("alt_count", c_int),
        ("alts", ps_plan_option * PS_PLAN_MAX_ALTS),
        ("node_count", c_int),
        ("gpu_node", c_int * PS_PLAN_MAX_GPUS),
        ("command_count", c_int),
        ("commands", ps_plan_item * PS_PLAN_MAX_ITEMS),
        ("vllm_version", c_char * 32),
        ("vllm_version_note", c_char * 192),
        ("visible_bytes", c_uint64),
        ("activation_bytes", c_uint64),
        ("non_torch_bytes", c_uint64),
        ("graphs_bytes", c_uint64),
        ("max_num_batched_tokens", c_int),
        ("block_size", c_int),
        ("kv_groups", c_int),
        ("kv_blocks", c_uint64),
        ("kv_group_tokens", c_uint64),
        ("max_concurrency", c_double),
        ("error_band", c_char * 160),
        ("calibration", c_char * 256),
        ("kv_band_pct", c_double),
        ("safe_max_model_len", c_int),
        ("safe_max_num_seqs", c_int),
        ("encoder_profile_bytes", c_uint64),
        ("encoder_profile", c_char * 16),
    ]


def _find_library() -> str:
    env = os.environ.get("PEERSCOPE_LIBRARY")
    if env:
        return env
    here = Path(__file__).resolve().parent
    for name in ("libpeerscope.so", "libpeerscope.so.0"):
        candidate = here / "lib" / name
        if candidate.exists():
            return str(candidate)
    raise ImportError(
        "peerscope: libpeerscope.so is not inside the package (%s/lib); install the package "
        "with `pip install .` from the peerscope source tree, or point PEERSCOPE_LIBRARY at a "
        "built libpeerscope.so" % here
    )


def _declare(lib: ctypes.CDLL) -> None:
    rp = POINTER(ps_report)
    table = [
        ("ps_status_name", c_char_p, [c_int]),
        ("ps_status_str", c_char_p, [c_int]),
        ("ps_version", c_char_p, []),
        ("ps_abi_version", c_int, []),
        ("ps_ctx_new", c_void_p, []),
        ("ps_ctx_free", None, [c_void_p]),
        ("ps_ctx_error", c_char_p, [c_void_p]),
        ("ps_report_free", None, [rp]),
        ("ps_report_pair", POINTER(ps_pair), [rp, c_int, c_int]),
        ("ps_pair_usable", c_bool, [rp, POINTER(ps_pair)]),
        ("ps_pair_failed", c_bool, [rp, POINTER(ps_pair)]),
        ("ps_probe", c_int, [c_void_p, POINTER(ps_probe_opts), POINTER(rp)]),
        ("ps_verify", c_int, [c_void_p, rp, POINTER(ps_verify_opts)]),
        ("ps_report_apply_visible", c_int, [c_void_p, rp, POINTER(ps_visible_opts)]),
        ("ps_report_restricted", c_bool, [rp]),
        ("ps_gpu_allowed", c_bool, [rp, c_int]),
        ("ps_report_allowed_gpus", c_int, [rp, POINTER(c_int), c_int]),
        ("ps_bench_run", c_int, [c_void_p, rp, POINTER(ps_bench_opts)]),
        ("ps_best_group", c_int, [rp, POINTER(c_int), c_int, c_int, POINTER(c_int), c_int]),
        ("ps_recommend_tp", c_int, [rp, POINTER(c_int), c_int]),
        ("ps_report_to_json", c_int, [c_void_p, rp, POINTER(c_void_p)]),
        ("ps_report_read_json", c_int, [c_void_p, c_char_p, POINTER(rp)]),
        ("ps_import_topology", c_int, [c_void_p, c_char_p, POINTER(rp)]),
        ("ps_model_load", c_int, [c_void_p, c_char_p, POINTER(POINTER(ps_model))]),
        ("ps_model_synthetic", c_int, [c_void_p, c_double, c_char_p, c_double, POINTER(POINTER(ps_model))]),
        ("ps_model_free", None, [POINTER(ps_model)]),
        ("ps_plan_make", c_int, [c_void_p, rp, POINTER(ps_plan_request), POINTER(POINTER(ps_plan))]),
        ("ps_plan_free", None, [POINTER(ps_plan)]),
        ("ps_plan_write", c_int, [c_void_p, POINTER(ps_plan), c_int, POINTER(c_void_p)]),
        ("ps_plan_fields_json", c_int, [c_void_p, POINTER(c_void_p)]),
        ("ps_plan_input_from_json", c_int, [c_void_p, c_char_p, c_size_t, POINTER(c_char_p), POINTER(c_void_p)]),
        ("ps_plan_input_free", None, [c_void_p]),
        ("ps_plan_input_use_flags", None, [c_void_p]),
        ("ps_plan_input_check", c_int, [c_void_p, c_void_p]),
        ("ps_plan_input_model", c_int, [c_void_p, c_void_p, POINTER(POINTER(ps_model))]),
        ("ps_plan_input_request", c_int, [c_void_p, c_void_p, POINTER(ps_model), POINTER(ps_plan_request)]),
        ("ps_bundled_path", c_int, [c_void_p, c_int, c_char_p, c_size_t]),
        ("ps_link_name", c_char_p, [c_int, c_int, c_char_p, c_size_t]),
        ("ps_claim_name", c_char_p, [c_int]),
        ("ps_verdict_name", c_char_p, [c_int]),
        ("ps_free", None, [c_void_p]),
    ]
    for name, restype, argtypes in table:
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes


def _load() -> ctypes.CDLL:
    path = _find_library()
    try:
        lib = ctypes.CDLL(path)
    except OSError as exc:
        raise ImportError("peerscope: cannot load %s: %s" % (path, exc)) from exc
    try:
        _declare(lib)
    except AttributeError as exc:
        raise ImportError("peerscope: %s lacks a function this package needs: %s" % (path, exc))
    abi = lib.ps_abi_version()
    if abi != ABI_VERSION:
        raise ImportError(
            "peerscope: %s has ABI version %d but this Python package mirrors version %d of "
            "the C structs; rebuild both from one source tree (pip install .)" % (path, abi, ABI_VERSION)
        )
    version = lib.ps_version().decode()
    if version != __version__:
        raise ImportError(
            "peerscope: %s is version %s but the Python package is %s; reinstall both from "
            "one source tree (pip install .)" % (path, version, __version__)
        )
    return lib


lib = _load()
LIBRARY_PATH = lib._name


def text(raw: bytes) -> str:
    """A C char array as str (invalid UTF-8 replaced, never an exception)."""
    return raw.decode("utf-8", "replace")


class Ctx:
    """A ps_ctx for one or more calls; raises the matching Error on failure."""

    def __init__(self) -> None:
        self.ptr = lib.ps_ctx_new()
        if not self.ptr:
            raise MemoryError("peerscope: ps_ctx_new failed")

    def __enter__(self) -> "Ctx":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.ptr:
            lib.ps_ctx_free(self.ptr)
            self.ptr = None

    def error(self) -> str:
        raw = lib.ps_ctx_error(self.ptr)
        return raw.decode("utf-8", "replace") if raw else ""

    def check(self, status: int, what: Optional[str] = None) -> None:
        if status != 0:
            detail = self.error() or lib.ps_status_str(status).decode()
            if what:
                detail = "%s: %s" % (what, detail)
            raise error_for(status, detail)


def bundled_path(which: int) -> str:
    """ps_bundled_path: a file shipped next to libpeerscope (worker, fake drivers, fixtures)."""
    buf = ctypes.create_string_buffer(4096)
    with Ctx() as ctx:
        ctx.check(lib.ps_bundled_path(ctx.ptr, which, buf, len(buf)))
    return buf.value.decode()


def take(ptr: Any, cls: Any, free: Any) -> Any:
    """A Python-owned copy of a struct the library allocated (one without pointers inside:
    ps_plan, ps_model, ps_launch_result), the library's freed with its ps_T_free."""
    try:
        return cls.from_buffer_copy(ptr.contents)
    finally:
        free(ptr)


def plan_make(ctx: "Ctx", report: Any, req: "ps_plan_request") -> "ps_plan":
    """ps_plan_make on one report; the plan as a Python-owned copy."""
    out = POINTER(ps_plan)()
    ctx.check(lib.ps_plan_make(ctx.ptr, report, ctypes.byref(req), ctypes.byref(out)))
    return take(out, ps_plan, lib.ps_plan_free)


def take_string(ptr: c_void_p) -> str:
    """A NUL-terminated string allocated by the library, freed with ps_free."""
    try:
        return ctypes.string_at(ptr).decode("utf-8", "replace")
    finally:
        lib.ps_free(ptr)


_FIELDS: Optional[List[Dict[str, Any]]] = None


def plan_fields() -> List[Dict[str, Any]]:
    """The library's one definition of the plan request (ps_plan_fields_json): every field's
    name, flag, type, range, default and help, as the CLI and the web API read it."""
    global _FIELDS
    if _FIELDS is None:
        out = c_void_p()
        with Ctx() as ctx:
            ctx.check(lib.ps_plan_fields_json(ctx.ptr, ctypes.byref(out)))
        _FIELDS = json.loads(take_string(out))["fields"]
    return _FIELDS


def plan_field_names(group: Optional[str] = None) -> List[str]:
    """The JSON names of the plan request's fields (of one group: "model" or "plan")."""
    return [f["name"] for f in plan_fields() if group is None or f["group"] == group]


class PlanInput:
    """A plan's inputs through the library's one parser (ps_plan_input_from_json): unknown
    fields, wrong types and values out of range raise InvalidArgument naming the field. None
    is "not given", and so is 0 for a field whose range starts above 0 (the Python API's
    "0 = chosen"). :meth:`model` loads the model its source names (exactly one of model_dir,
    model_size_gb, params_b); :meth:`request` is the ps_plan_request for it."""

    def __init__(self, fields: Dict[str, Any], flags: bool = False) -> None:
        ranges = {f["name"]: f for f in plan_fields()}
        given = {}
        for k, v in fields.items():
            f = ranges.get(k)
            if v is None or (f and f["min"] is not None and f["min"] > 0 and v == 0 and not isinstance(v, bool)):
                continue
            given[k] = list(v) if isinstance(v, tuple) else v
        body = json.dumps(given).encode()
        self.ptr = c_void_p()
        self._model: Optional[ps_model] = None
        with Ctx() as ctx:
            ctx.check(lib.ps_plan_input_from_json(ctx.ptr, body, len(body), None, ctypes.byref(self.ptr)))
        if flags:  # messages name the fields as a command line does ("--params-b N")
            lib.ps_plan_input_use_flags(self.ptr)

    def check(self) -> None:
        """The rules across fields (ps_plan_input_check): exactly one model source, ..."""
        with Ctx() as ctx:
            ctx.check(lib.ps_plan_input_check(ctx.ptr, self.ptr))

    def __enter__(self) -> "PlanInput":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.ptr:
            lib.ps_plan_input_free(self.ptr)
            self.ptr = c_void_p()

    def model(self) -> ps_model:
        out = POINTER(ps_model)()
        with Ctx() as ctx:
            ctx.check(lib.ps_plan_input_model(ctx.ptr, self.ptr, ctypes.byref(out)))
        return take(out, ps_model, lib.ps_model_free)

    def request(self, model: ps_model) -> ps_plan_request:
        """The request (it points into this input and `model`: keep both alive while it is used)."""
        req = ps_plan_request()
        with Ctx() as ctx:
            ctx.check(lib.ps_plan_input_request(ctx.ptr, self.ptr, ctypes.byref(model), ctypes.byref(req)))
        return req


__all__ = ["lib", "Ctx", "Error", "ABI_VERSION", "LIBRARY_PATH"]
