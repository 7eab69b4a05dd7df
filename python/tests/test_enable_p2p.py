"""enable_p2p through libcuda (the fake driver of a played-back machine), in a child
process: the fake driver keeps its machine for the life of the process."""

import json
import subprocess
import sys

import pytest

import peerscope
from peerscope import _cuda
from conftest import FIXTURES

CHILD = """
import json, sys, peerscope
gm = peerscope.GPUManager({"fixture": sys.argv[1], "cache_dir": sys.argv[2]})
print(json.dumps(gm.enable_p2p()))
"""


def _enable(fixture: str, cache_dir: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(FIXTURES / fixture), cache_dir],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout)


def test_enable_p2p_on_the_example_machine(cache_dir: str) -> None:
    res = _enable("example-4x-a100.topo", cache_dir)
    assert len(res) == 12
    for key, r in res.items():
        assert r == {"enabled": True, "result": "CUDA_SUCCESS", "can_access": True, "verified": True}, key


def test_enable_p2p_refused_by_the_chipset(cache_dir: str) -> None:
    res = _enable("pcie-4-consumer-cns.topo", cache_dir)
    for r in res.values():
        assert r["enabled"] is False
        assert r["result"] == "CUDA_ERROR_PEER_ACCESS_UNSUPPORTED"
        assert r["verified"] is False


def test_without_a_driver_raises_driver_unavailable(tmp_path) -> None:
    try:
        import ctypes

        ctypes.CDLL("libcuda.so.1")
        pytest.skip("this machine has libcuda")
    except OSError:
        pass
    with pytest.raises(peerscope.DriverUnavailable) as exc:
        _cuda.enable_peer_access(["00000000:01:00.0"], str(tmp_path))
    assert exc.value.status == 10


SUBSET = """
import json, sys, peerscope
gm = peerscope.GPUManager({"fixture": sys.argv[1], "cache_dir": sys.argv[2]})
out = {"pairs": gm.enable_p2p([1, 2])}
try:
    gm.enable_p2p([0, 9])
except peerscope.InvalidArgument as exc:
    out["error"] = exc.status
print(json.dumps(out))
"""


def test_enable_p2p_on_a_subset_and_a_bad_index(cache_dir: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", SUBSET, str(FIXTURES / "fault-corrupt.topo"), cache_dir],
        check=True, capture_output=True, text=True,
    )
    res = json.loads(out.stdout)
    assert sorted(res["pairs"]) == ["GPU1->GPU2", "GPU2->GPU1"]
    # the driver enables peer access, but the pair failed a real transfer: both are shown
    assert res["pairs"]["GPU1->GPU2"]["enabled"] is True
    assert res["pairs"]["GPU1->GPU2"]["verified"] is False
    assert res["error"] == 1
