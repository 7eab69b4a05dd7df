"""Shared fixtures: managers on the repository's fixture machines (played back through the
installed package's fake drivers), with a private verification cache."""

import os  # noqa: F401
from pathlib import Path
from typing import Callable

import pytest

import peerscope

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
MODELS = FIXTURES / "models"
LLAMA_70B = MODELS / "Llama-3.1-70B-Instruct"


@pytest.fixture
def cache_dir(tmp_path: Path) -> str:
    d = tmp_path / "cache"
    d.mkdir()
    return str(d)


@pytest.fixture
def manager(cache_dir: str) -> Callable[..., peerscope.GPUManager]:
    def make(fixture: str, **config: object) -> peerscope.GPUManager:
        cfg = {"fixture": str(FIXTURES / fixture), "cache_dir": cache_dir}
        cfg.update(config)
        return peerscope.GPUManager(cfg)

    return make


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PEERSCOPE_FIXTURE", "PEERSCOPE_DRIVER_DIR", "PEERSCOPE_WORKER"):
        monkeypatch.delenv(name, raising=False)
