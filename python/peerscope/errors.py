"""Exceptions raised by the peerscope package.

Every failure of the C library raises a subclass of :class:`Error` that carries the
library's status code (``status``, an ``int`` from ``PS_STATUS_MAP`` in peerscope/core.h), its
name (``status_name``, e.g. ``"ERR_BAD_INPUT"``) and the library's one-line detail as the
message. Python-side refusals (:class:`NotAvailable`) use the closest C status.
"""

from typing import Dict, Optional, Type

# The numbers of PS_STATUS_MAP in include/peerscope/core.h (fixed forever there).
OK = 0
ERR_INVALID_ARG = 1
ERR_NO_MEMORY = 2
ERR_DRIVER_UNAVAILABLE = 3
ERR_DRIVER = 4
ERR_BAD_INPUT = 5
ERR_IO = 6
ERR_WORKER = 7
ERR_NOT_FOUND = 8
ERR_INTERNAL = 9
ERR_NO_DRIVER = 10
ERR_NETWORK = 11

STATUS_NAMES: Dict[int, str] = {
    OK: "OK",
    ERR_INVALID_ARG: "ERR_INVALID_ARG",
    ERR_NO_MEMORY: "ERR_NO_MEMORY",
    ERR_DRIVER_UNAVAILABLE: "ERR_DRIVER_UNAVAILABLE",
    ERR_DRIVER: "ERR_DRIVER",
    ERR_BAD_INPUT: "ERR_BAD_INPUT",
    ERR_IO: "ERR_IO",
    ERR_WORKER: "ERR_WORKER",
    ERR_NOT_FOUND: "ERR_NOT_FOUND",
    ERR_INTERNAL: "ERR_INTERNAL",
    ERR_NO_DRIVER: "ERR_NO_DRIVER",
    ERR_NETWORK: "ERR_NETWORK",
}


class Error(Exception):
    """Base class of every peerscope error.

    Attributes:
        status: the C library's status code (``int``), e.g. 5 for ``ERR_BAD_INPUT``.
        status_name: its name, e.g. ``"ERR_BAD_INPUT"``.
        detail: the one-line explanation (also the exception's message).
    """

    default_status: int = ERR_INTERNAL

    def __init__(self, detail: str, status: Optional[int] = None) -> None:
        self.status: int = self.default_status if status is None else int(status)
        self.status_name: str = STATUS_NAMES.get(self.status, "status %d" % self.status)
        self.detail: str = detail
        super().__init__(detail)

    def __str__(self) -> str:
        return "%s (%s)" % (self.detail, self.status_name)


class InvalidArgument(Error, ValueError):
    """A request that cannot be met as asked (ERR_INVALID_ARG, 1)."""

    default_status = ERR_INVALID_ARG


class OutOfMemory(Error, MemoryError):
    """The library ran out of memory (ERR_NO_MEMORY, 2)."""

    default_status = ERR_NO_MEMORY


class DriverUnavailable(Error):
    """The NVIDIA driver cannot be used (ERR_DRIVER_UNAVAILABLE, 3); also the base of
    :class:`NoDriver`."""

    default_status = ERR_DRIVER_UNAVAILABLE


class DriverError(Error):
    """A driver call failed (ERR_DRIVER, 4)."""

    default_status = ERR_DRIVER


class BadInput(Error, ValueError):
    """A malformed file: fixture, report, topology text or model directory (ERR_BAD_INPUT, 5)."""

    default_status = ERR_BAD_INPUT


class IOFailure(Error, OSError):
    """Reading or writing a file failed (ERR_IO, 6)."""

    default_status = ERR_IO


class WorkerFailed(Error):
    """The verification worker process failed (ERR_WORKER, 7)."""

    default_status = ERR_WORKER


class NotFound(Error, LookupError):
    """Something that should exist does not (ERR_NOT_FOUND, 8)."""

    default_status = ERR_NOT_FOUND


class InternalError(Error):
    """A bug in peerscope (ERR_INTERNAL, 9)."""

    default_status = ERR_INTERNAL


class NoDriver(DriverUnavailable):
    """No NVIDIA driver is installed (ERR_NO_DRIVER, 10)."""

    default_status = ERR_NO_DRIVER


class NetworkError(Error, ConnectionError):
    """The Hugging Face Hub could not answer for a model id: offline (HF_HUB_OFFLINE), a
    timeout, DNS or TLS trouble, rate limited, or a gated model without a token
    (ERR_NETWORK, 11)."""

    default_status = ERR_NETWORK


class NotAvailable(NotFound):
    """A feature that this build of peerscope does not have (the ``peerscope launch``
    executable, the P2P benchmark). Carries ERR_NOT_FOUND (8): the piece it needs is not
    there. Never replaced by made-up results."""

    default_status = ERR_NOT_FOUND


_BY_STATUS: Dict[int, Type[Error]] = {
    ERR_INVALID_ARG: InvalidArgument,
    ERR_NO_MEMORY: OutOfMemory,
    ERR_DRIVER_UNAVAILABLE: DriverUnavailable,
    ERR_DRIVER: DriverError,
    ERR_BAD_INPUT: BadInput,
    ERR_IO: IOFailure,
    ERR_WORKER: WorkerFailed,
    ERR_NOT_FOUND: NotFound,
    ERR_INTERNAL: InternalError,
    ERR_NO_DRIVER: NoDriver,
    ERR_NETWORK: NetworkError,
}


def error_for(status: int, detail: str) -> Error:
    """The exception for a C status code (an :class:`Error` for codes this package does not
    know yet)."""
    cls = _BY_STATUS.get(int(status), Error)
    return cls(detail, status)
