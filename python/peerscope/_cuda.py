"""Peer access in the calling process through the CUDA driver API (libcuda), with ctypes.

Entry points are resolved as src/drv/cuda.c does: cuGetProcAddress_v2 (CUDA >= 12.0) or
cuGetProcAddress (11.3 .. 11.8) at ABI version 12000, else the versioned symbol names."""

import ctypes
import os
from ctypes import POINTER, byref, c_char_p, c_int, c_uint, c_uint64, c_void_p
from typing import Any, Dict, List, Optional, Tuple

from .errors import DriverError, DriverUnavailable, InvalidArgument, NoDriver

CUDA_ABI_VERSION = 12000
CUDA_SUCCESS = 0
CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED = 704

_CUresult = c_int
_SIGNATURES: Dict[str, Tuple[str, Any]] = {
    # base name: (legacy symbol, prototype)
    "cuGetErrorName": ("cuGetErrorName", ctypes.CFUNCTYPE(_CUresult, c_int, POINTER(c_char_p))),
    "cuInit": ("cuInit", ctypes.CFUNCTYPE(_CUresult, c_uint)),
    "cuDeviceGetCount": ("cuDeviceGetCount", ctypes.CFUNCTYPE(_CUresult, POINTER(c_int))),
    "cuDeviceGet": ("cuDeviceGet", ctypes.CFUNCTYPE(_CUresult, POINTER(c_int), c_int)),
    "cuDeviceGetPCIBusId": ("cuDeviceGetPCIBusId", ctypes.CFUNCTYPE(_CUresult, c_char_p, c_int, c_int)),
    "cuDeviceCanAccessPeer": ("cuDeviceCanAccessPeer", ctypes.CFUNCTYPE(_CUresult, POINTER(c_int), c_int, c_int)),
    "cuDevicePrimaryCtxRetain": ("cuDevicePrimaryCtxRetain", ctypes.CFUNCTYPE(_CUresult, POINTER(c_void_p), c_int)),
    "cuCtxSetCurrent": ("cuCtxSetCurrent", ctypes.CFUNCTYPE(_CUresult, c_void_p)),
    "cuCtxEnablePeerAccess": ("cuCtxEnablePeerAccess", ctypes.CFUNCTYPE(_CUresult, c_void_p, c_uint)),
}


class _Cuda:
    def __init__(self, driver_dir: Optional[str]) -> None:
        names = ["libcuda.so.1", "libcuda.so"]
        candidates: List[str] = []
        if driver_dir:
            candidates += [os.path.join(driver_dir, n) for n in names]
        candidates += names
        self.lib = None
        errors = []
        for path in candidates:
            if os.sep in path and not os.path.exists(path):
                continue
            try:
                self.lib = ctypes.CDLL(path)
                self.path = path
                break
            except OSError as exc:
                errors.append(str(exc))
        if self.lib is None:
            raise NoDriver("no CUDA driver: %s" % ("; ".join(errors) or "libcuda.so.1 not found"))
        self.fn: Dict[str, Any] = {}
        proc_v2 = getattr(self.lib, "cuGetProcAddress_v2", None)
        proc_v1 = getattr(self.lib, "cuGetProcAddress", None)
        if proc_v2 is not None:
            proc_v2.restype = _CUresult
            proc_v2.argtypes = [c_char_p, POINTER(c_void_p), c_int, c_uint64, POINTER(c_int)]
        elif proc_v1 is not None:
            proc_v1.restype = _CUresult
            proc_v1.argtypes = [c_char_p, POINTER(c_void_p), c_int, c_uint64]
        for base, (legacy, proto) in _SIGNATURES.items():
            ptr = c_void_p()
            if proc_v2 is not None:
                found = c_int(1)
                rc = proc_v2(base.encode(), byref(ptr), CUDA_ABI_VERSION, 0, byref(found))
                ok = rc == CUDA_SUCCESS and found.value == 0 and ptr.value
            elif proc_v1 is not None:
                rc = proc_v1(base.encode(), byref(ptr), CUDA_ABI_VERSION, 0)
                ok = rc == CUDA_SUCCESS and ptr.value
            else:
                sym = getattr(self.lib, legacy, None)
                ok = sym is not None
                if ok:
                    ptr = ctypes.cast(sym, c_void_p)
            if not ok:
                raise DriverUnavailable("%s has no %s (at CUDA ABI %d)" % (self.path, base, CUDA_ABI_VERSION))
            self.fn[base] = proto(ptr.value)

    def error_name(self, rc: int) -> str:
        name = c_char_p()
        if self.fn["cuGetErrorName"](rc, byref(name)) == CUDA_SUCCESS and name.value:
            return name.value.decode()
        return "CUDA error %d" % rc

    def call(self, name: str, *args: Any) -> None:
        rc = self.fn[name](*args)
        if rc != CUDA_SUCCESS:
            raise DriverError("%s failed: %s" % (name, self.error_name(rc)))


def _norm_bus(bus: str) -> str:
    """'00000000:01:00.0' (NVML) and '0000:01:00.0' (CUDA) -> '01:00.0' with the domain as int."""
    bus = bus.strip().lower()
    parts = bus.split(":")
    if len(parts) == 3:
        return "%x:%s:%s" % (int(parts[0], 16), parts[1], parts[2])
    return bus


def enable_peer_access(bus_ids: List[str], driver_dir: Optional[str]) -> Dict[Tuple[int, int], Dict[str, Any]]:
    """Enables peer access for every ordered pair of the devices with these PCI bus ids.
    Returns {(i, j): {"enabled", "result", "can_access"}} with i, j positions in bus_ids."""
    cuda = _Cuda(driver_dir)
    rc = cuda.fn["cuInit"](0)
    if rc != CUDA_SUCCESS:
        raise DriverUnavailable("cuInit failed: %s" % cuda.error_name(rc))
    count = c_int(0)
    cuda.call("cuDeviceGetCount", byref(count))
    by_bus: Dict[str, int] = {}
    for ordinal in range(count.value):
        dev = c_int(0)
        cuda.call("cuDeviceGet", byref(dev), ordinal)
        buf = ctypes.create_string_buffer(64)
        cuda.call("cuDeviceGetPCIBusId", buf, len(buf), dev.value)
        by_bus[_norm_bus(buf.value.decode())] = dev.value
    devices = []
    for bus in bus_ids:
        dev_id = by_bus.get(_norm_bus(bus))
        if dev_id is None:
            raise InvalidArgument(
                "the GPU at %s is not visible to CUDA in this process (CUDA_VISIBLE_DEVICES?)" % bus
            )
        devices.append(dev_id)
    contexts = []
    for dev_id in devices:
        ctx = c_void_p()
        cuda.call("cuDevicePrimaryCtxRetain", byref(ctx), dev_id)
        contexts.append(ctx)
    results: Dict[Tuple[int, int], Dict[str, Any]] = {}
    for i, a in enumerate(devices):
        for j, b in enumerate(devices):
            if i == j:
                continue
            can = c_int(0)
            rc = cuda.fn["cuDeviceCanAccessPeer"](byref(can), a, b)
            can_access: Optional[bool] = bool(can.value) if rc == CUDA_SUCCESS else None
            cuda.call("cuCtxSetCurrent", contexts[i])
            rc = cuda.fn["cuCtxEnablePeerAccess"](contexts[j], 0)
            enabled = rc in (CUDA_SUCCESS, CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED)
            results[(i, j)] = {
                "enabled": enabled,
                "result": "CUDA_SUCCESS" if rc == CUDA_SUCCESS else cuda.error_name(rc),
                "can_access": can_access,
            }
    return results
