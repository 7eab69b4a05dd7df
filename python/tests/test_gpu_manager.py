"""GPUManager on the fixture machines."""

from pathlib import Path

import pytest

import peerscope
from conftest import FIXTURES, LLAMA_70B, MODELS

ALL_PAIRS = ["GPU%d->GPU%d" % (a, b) for a in range(4) for b in range(4) if a != b]


def test_example_machine_all_pairs_verified(manager) -> None:
    gm = manager("example-4x-a100.topo")
    info = gm.check_p2p_connectivity()
    assert info["p2p_enabled"] is True
    assert info["tensor_parallel_group_connected"] is True
    assert list(info["p2p_matrix"]) == ALL_PAIRS
    assert all(v is True for v in info["p2p_matrix"].values())
    assert info["verified"] is True and info["source"] == "fixture" and info["notice"] == ""
    assert info["recommended_tensor_parallel_size"] == 4
    assert info["best_group"] == [0, 1, 2, 3]
    assert [g["name"] for g in info["gpus"]] == ["NVIDIA A100-SXM4-40GB"] * 4
    assert [g["memory_total_mb"] for g in info["gpus"]] == [40960] * 4
    assert info["gpus"][0]["pci_bus_id"] == "00000000:01:00.0"
    for key in ALL_PAIRS:
        assert info["claims"][key]["read"] == "OK" and info["claims"][key]["write"] == "OK"
        link = info["links"][key]
        assert link["link"] == "NV4" and link["verdict"] == "ok" and not link["failed"]
        assert isinstance(link["copy_us"], float)


def test_corrupt_pair_is_false_although_the_driver_claims_it(manager) -> None:
    gm = manager("fault-corrupt.topo")
    info = gm.check_p2p_connectivity()
    assert info["p2p_matrix"]["GPU1->GPU2"] is False
    assert info["p2p_matrix"]["GPU2->GPU1"] is False
    assert info["p2p_matrix"]["GPU0->GPU1"] is True
    # the driver's claim says yes; the verdict says no
    assert info["claims"]["GPU1->GPU2"]["read"] == "OK"
    assert info["links"]["GPU1->GPU2"]["verdict"] == "corrupt"
    assert info["links"]["GPU1->GPU2"]["claim_lies"] is True
    assert "bytes differ" in info["links"]["GPU1->GPU2"]["reason"]
    assert info["p2p_enabled"] is True
    assert info["tensor_parallel_group_connected"] is False
    assert info["recommended_tensor_parallel_size"] == 2


def test_consumer_cards_refused_by_the_chipset(manager) -> None:
    gm = manager("pcie-4-consumer-cns.topo")
    info = gm.check_p2p_connectivity()
    assert info["p2p_enabled"] is False
    assert not any(info["p2p_matrix"].values())
    for key in ALL_PAIRS:
        assert info["claims"][key]["read"] == "CNS"
        assert info["links"][key]["verdict"] == "unsupported"
        assert info["links"][key]["claim_lies"] is False
    assert info["recommended_tensor_parallel_size"] == 1


def test_gpu_selection(manager) -> None:
    gm = manager("fault-corrupt.topo", gpus=[0, 1])
    info = gm.check_p2p_connectivity()
    assert list(info["p2p_matrix"]) == ["GPU0->GPU1", "GPU1->GPU0"]
    assert info["tensor_parallel_group_connected"] is True
    assert [g["index"] for g in info["gpus"]] == [0, 1]


def test_optimize_gpu_placement(manager) -> None:
    gm = manager("example-4x-a100.topo")
    out = gm.optimize_gpu_placement(model_size_gb=140)
    assert out["feasible"] is True
    assert out["recommended_tensor_parallel_size"] == 4
    assert out["gpus"] == [0, 1, 2, 3]
    assert out["cuda_visible_devices"] == "0,1,2,3"
    assert out["p2p_optimized"] is True
    mem = out["memory"]
    assert mem["gpu_memory_total_gib"] == 40.0
    assert mem["budget_gib"] == pytest.approx(36.23, abs=0.01)  # 0.92 x the CUDA-visible 39.38 GiB (vLLM 0.25)
    assert mem["weights_gib"] > 30


def test_optimize_gpu_placement_small_model_one_gpu(manager) -> None:
    out = manager("example-4x-a100.topo").optimize_gpu_placement(10)
    assert out["recommended_tensor_parallel_size"] == 1
    assert out["p2p_optimized"] is False
    assert out["replicas"] == 4


def test_too_large_model_is_infeasible_with_numbers(manager) -> None:
    out = manager("example-4x-a100.topo").optimize_gpu_placement(1000)
    assert out["feasible"] is False
    assert "GiB" in out["summary"]


def test_vllm_args_for_llama_70b(manager) -> None:
    gm = manager("example-4x-a100.topo")
    args = gm.get_vllm_gpu_args(4, 1, model_path=str(LLAMA_70B))
    assert args["engine_args"] == {
        "tensor_parallel_size": 4,
        "pipeline_parallel_size": 1,
        "disable_custom_all_reduce": False,
        "distributed_executor_backend": "mp",
        "gpu_memory_utilization": 0.92,
        "max_model_len": 17360,
    }
    for key, value in args["engine_args"].items():
        assert args[key] == value
        assert args["reasons"][key]
    assert args["env"]["CUDA_VISIBLE_DEVICES"] == "0,1,2,3"
    assert "NCCL_P2P_DISABLE" not in args["env"]
    for name in args["env"]:
        assert args["reasons"][name]
    assert args["feasible"] is True
    assert "vllm serve" in args["command"]


def test_vllm_args_on_a_broken_pair_disable_p2p(manager) -> None:
    gm = manager("fault-corrupt.topo")
    args = gm.get_vllm_gpu_args(4, 1, model_path=str(LLAMA_70B))
    assert args["disable_custom_all_reduce"] is True
    assert "GPU1->GPU2" in args["reasons"]["disable_custom_all_reduce"]
    assert args["env"]["NCCL_P2P_DISABLE"] == "1"
    # never the origin's NCCL_P2P_DISABLE=0, never Ray because P2P works
    good = manager("example-4x-a100.topo").get_vllm_gpu_args(4, 1, model_path=str(LLAMA_70B))
    assert good["distributed_executor_backend"] == "mp"


def test_vllm_args_from_the_config_model(manager) -> None:
    gm = manager("example-4x-a100.topo", model=str(LLAMA_70B), gpu_memory_utilization=0.95)
    args = gm.get_vllm_gpu_args()
    assert args["tensor_parallel_size"] == 4
    assert args["gpu_memory_utilization"] == pytest.approx(0.95)


def test_vllm_args_topology_only(manager) -> None:
    args = manager("example-4x-a100.topo").get_vllm_gpu_args(2, 1)
    assert args["tensor_parallel_size"] == 2
    assert args["max_model_len"] is None
    assert "no model" in args["reasons"]["max_model_len"]
    assert args["gpus"] == [0, 1]


def test_report_json(manager) -> None:
    import json

    doc = json.loads(manager("example-4x-a100.topo").report_json())
    assert doc["schema"] == "peerscope.topology/1" if "schema" in doc else True
    assert len(doc["gpus"]) == 4


# ---- errors carry the C status ----------------------------------------------------------


def test_missing_fixture_is_not_found(cache_dir: str) -> None:
    with pytest.raises(peerscope.NotFound) as exc:
        peerscope.GPUManager({"fixture": "/nonexistent.topo", "cache_dir": cache_dir})
    assert exc.value.status == 8 and exc.value.status_name == "ERR_NOT_FOUND"
    assert isinstance(exc.value, peerscope.Error)


def test_tp_larger_than_the_gpus_is_invalid(manager) -> None:
    gm = manager("example-4x-a100.topo")
    with pytest.raises(peerscope.InvalidArgument) as exc:
        gm.get_vllm_gpu_args(8, 1, model_path=str(LLAMA_70B))
    assert exc.value.status == 1 and exc.value.status_name == "ERR_INVALID_ARG"


def test_unknown_gpu_is_invalid(manager) -> None:
    with pytest.raises(peerscope.InvalidArgument) as exc:
        manager("example-4x-a100.topo", gpus=[0, 7])
    assert exc.value.status == 1


def test_bad_model_directory(manager, tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{ not json")
    gm = manager("example-4x-a100.topo")
    with pytest.raises(peerscope.Error) as exc:
        gm.get_vllm_gpu_args(4, 1, model_path=str(tmp_path))
    assert exc.value.status == 5 and isinstance(exc.value, peerscope.BadInput)
    assert "config.json" in str(exc.value)


def test_live_without_a_driver_raises_no_driver(cache_dir: str) -> None:
    try:
        gm = peerscope.GPUManager({"live": True, "cache_dir": cache_dir})
    except peerscope.DriverUnavailable as exc:
        assert exc.status in (3, 10)
        assert isinstance(exc, peerscope.Error)
    else:  # a machine with a real driver
        assert gm.source == "live"


def test_bundled_example_when_no_driver(cache_dir: str) -> None:
    gm = peerscope.GPUManager({"cache_dir": cache_dir})
    if gm.source == "live":
        pytest.skip("this machine has an NVIDIA driver")
    assert "no NVIDIA driver on this machine" in gm.notice
    assert "bundled example" in gm.notice
    assert gm.check_p2p_connectivity()["recommended_tensor_parallel_size"] == 4


def test_imported_topology_uses_claims(cache_dir: str) -> None:
    texts = sorted((FIXTURES / "topo").glob("*.txt"))
    assert texts
    gm = peerscope.GPUManager({"topology": str(texts[0])})
    info = gm.check_p2p_connectivity()
    assert info["verified"] is False and info["source"] == "file"
    with pytest.raises(peerscope.DriverUnavailable):
        gm.enable_p2p()


def test_plan_calibrated_by_a_vllm_log(manager, tmp_path, monkeypatch):
    """settings={"vllm_log": path} goes through the library's one request table: the log's
    figures calibrate the plan; a log that is not vLLM's raises, naming the file and line."""
    monkeypatch.setenv("PEERSCOPE_CACHE_DIR", str(tmp_path / "calibration"))
    monkeypatch.setenv("PEERSCOPE_VLLM", "none")
    log = tmp_path / "vllm.log"
    log.write_text("INFO [gpu_model_runner.py:4130] Model loading took 14.99 GiB memory\n"
                   "INFO [gpu_worker.py:356] Available KV cache memory: 53.13 GiB\n"
                   "INFO [kv_cache_utils.py:1307] GPU KV cache size: 435,216 tokens\n")
    m = manager("hgx-h100-8.topo")
    plan = m.plan(model_path=str(MODELS / "Llama-3.1-8B-Instruct"),
                  settings={"vllm_log": str(log), "vllm_version": "0.21.0"})
    assert plan["memory"]["kv_tokens"] == 435216
    bad = tmp_path / "bad.log"
    bad.write_text("hello\n")
    with pytest.raises(peerscope.BadInput, match=":1: not a vLLM"):
        m.plan(model_path=str(MODELS / "Llama-3.1-8B-Instruct"), settings={"vllm_log": str(bad)})
