"""peerscope: which GPUs can really talk peer-to-peer, and how to run vLLM on them.

The origin project's API (GPUManager, VLLMManager) over libpeerscope, through ctypes.
Importing checks that the C library's version and struct layout (ABI) match this package.
"""

from ._version import __version__
from .errors import (
    BadInput,
    DriverError,
    DriverUnavailable,
    Error,
    InternalError,
    InvalidArgument,
    IOFailure,
    NetworkError,
    NoDriver,
    NotAvailable,
    NotFound,
    OutOfMemory,
    WorkerFailed,
)
from ._lib import ABI_VERSION, LIBRARY_PATH, lib as _clib
from .gpu_manager import GPUManager, pair_key
from .vllm_manager import VLLMManager


def library_version() -> str:
    """The C library's ps_version()."""
    return _clib.ps_version().decode()


__all__ = [
    "__version__",
    "ABI_VERSION",
    "LIBRARY_PATH",
    "GPUManager",
    "VLLMManager",
    "pair_key",
    "library_version",
    "Error",
    "InvalidArgument",
    "OutOfMemory",
    "DriverUnavailable",
    "DriverError",
    "BadInput",
    "IOFailure",
    "WorkerFailed",
    "NotFound",
    "InternalError",
    "NetworkError",
    "NoDriver",
    "NotAvailable",
]
