"""VLLMManager: status, planning, and the refusals of what this build lacks."""

import asyncio
import os
import stat
from pathlib import Path

import pytest

import peerscope
from peerscope import vllm_manager
from conftest import LLAMA_70B


def test_get_p2p_status(manager) -> None:
    vm = peerscope.VLLMManager({}, manager("fault-corrupt.topo"))
    status = vm.get_p2p_status()
    assert status["p2p_enabled"] is True
    assert status["claim_mismatches"] == ["GPU1->GPU2", "GPU2->GPU1"]
    assert status["recommended_tensor_parallel_size"] == 2
    assert status["custom_all_reduce"] is True  # on the verified group of 2
    assert status["custom_all_reduce_reason"]


def test_optimize_reads_the_model_directory(manager) -> None:
    vm = peerscope.VLLMManager({"model": str(LLAMA_70B)}, manager("example-4x-a100.topo"))
    out = vm.optimize_tensor_parallelism()
    assert out["basis"] == "model directory"
    assert out["recommended_tensor_parallel_size"] == 4
    assert out["max_model_len"] == 17360
    assert out["p2p_optimized"] is True
    assert out["memory"]["kv_tokens"] == 17360
    assert out["vllm_args"]["engine_args"]["tensor_parallel_size"] == 4


def test_optimize_by_size_and_topology_only(manager) -> None:
    vm = peerscope.VLLMManager({}, manager("example-4x-a100.topo"))
    by_size = vm.optimize_tensor_parallelism(model_size_gb=10.0)
    assert by_size["basis"] == "model size"
    assert by_size["recommended_tensor_parallel_size"] == 1
    topo = vm.optimize_tensor_parallelism()
    assert topo["basis"] == "topology only"
    assert topo["recommended_tensor_parallel_size"] == 4
    assert topo["memory"] is None and topo["max_model_len"] is None


def test_benchmark_p2p_performance_is_measured(manager) -> None:
    vm = peerscope.VLLMManager({}, manager("rtx3090-2-nvlink.topo"))
    out = vm.benchmark_p2p_performance()
    assert out["simulated"] is True  # the fake drivers model timings; it says so
    assert out["gpus"] == [0, 1]
    pair = out["p2p_copy"]["GPU0->GPU1"]
    assert pair["p2p_enabled_gbps"] > pair["p2p_disabled_gbps"] > 0
    assert pair["speedup"] > 1
    assert pair["latency_us"]["p2p_enabled"] < pair["latency_us"]["p2p_disabled"]
    real = [g for g in out["allreduce"] if not g["virtual_ranks"]]
    assert real and all(g["oneshot_us"] and g["nccl_us"]["default"] for g in real)
    assert {"default", "NCCL_P2P_DISABLE=1", "NCCL_P2P_LEVEL=NVL"} <= set(real[0]["nccl_us"])
    assert out["problems"] == []
    # the measurements are now part of the report, as `peerscope bench --json` writes them
    assert '"bench"' in vm.gpu_manager.report_json()


def test_run_benchmark_rejects_bad_input_and_waives_missing_nccl(manager) -> None:
    gm = manager("rtx3090-2-nvlink.topo")
    with pytest.raises(peerscope.InvalidArgument):
        gm.run_benchmark(("bandwidth",))
    with pytest.raises(peerscope.InvalidArgument):
        gm.run_benchmark(("copy",), gpus=[5])
    bench = gm.run_benchmark(("allreduce",), nccl_path="/nonexistent/libnccl.so.2", trials=1, iters=2)
    nccl = [r for r in bench["results"] if r["kind"] == "allreduce_nccl"]
    assert nccl and all(r["outcome"] == "waived" and "NCCL" in r["reason"] for r in nccl)


def test_benchmark_refuses_an_imported_topology(tmp_path: Path) -> None:
    from conftest import REPO

    topo = REPO / "tests" / "fixtures" / "topo"
    first = sorted(topo.glob("*.txt"))[0]
    gm = peerscope.GPUManager({"topology": str(first)})
    with pytest.raises(peerscope.DriverUnavailable):
        gm.run_benchmark(("copy",))


def _script(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_load_model_refuses_without_peerscope_launch(manager, tmp_path: Path, monkeypatch) -> None:
    cli = _script(tmp_path / "peerscope", "echo \"peerscope: unknown command '$1'\" >&2; exit 2\n")
    monkeypatch.setenv("PEERSCOPE_CLI", cli)
    vm = peerscope.VLLMManager({}, manager("example-4x-a100.topo"))
    with pytest.raises(peerscope.NotAvailable) as exc:
        asyncio.run(vm.load_model(str(LLAMA_70B), {}))
    assert "peerscope launch" in str(exc.value)
    assert vm.status()["state"] == "not loaded"


def test_load_model_with_the_installed_cli_is_honest(manager) -> None:
    """The real installed CLI: either it has `launch` (then load_model may run) or
    load_model refuses; it never pretends."""
    vm = peerscope.VLLMManager({}, manager("example-4x-a100.topo"))
    try:
        vllm_manager.launch_help()
    except peerscope.NotAvailable:
        with pytest.raises(peerscope.NotAvailable):
            asyncio.run(vm.load_model(str(LLAMA_70B), {}))
    else:
        pytest.skip("this build has peerscope launch; exercised with a stand-in below")


def test_load_and_unload_through_a_launch_stand_in(manager, tmp_path: Path, monkeypatch) -> None:
    args_file = tmp_path / "args"
    cli = _script(
        tmp_path / "peerscope",
        'if [ "$2" = "--help" ]; then echo "usage: peerscope launch MODEL --tp N --pp N '
        '--gpus LIST --port P --fixture FILE --max-model-len N"; exit 0; fi\n'
        'echo "$@" > %s\n'
        'trap "echo stopping; exit 0" TERM\n'
        'echo "peerscope: ready http://127.0.0.1:8123"\n'
        "while :; do sleep 0.1; done\n" % args_file,
    )
    monkeypatch.setenv("PEERSCOPE_CLI", cli)
    vm = peerscope.VLLMManager({"port": 8123}, manager("example-4x-a100.topo"))

    async def run() -> None:
        st = await vm.load_model(str(LLAMA_70B), {"tensor_parallel_size": 4, "timeout": 20})
        assert st["state"] == "ready", st
        assert st["url"] == "http://127.0.0.1:8123"
        assert st["pid"] > 0
        words = args_file.read_text().split()
        assert words[:2] == ["launch", str(LLAMA_70B)]
        assert words[words.index("--tp") + 1] == "4"
        assert words[words.index("--port") + 1] == "8123"
        assert "--fixture" in words
        with pytest.raises(peerscope.InvalidArgument):
            await vm.load_model(str(LLAMA_70B), {})
        st = await vm.unload_model()
        assert st["state"] == "stopped"
        assert st["returncode"] == 0

    asyncio.run(run())


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_load_and_unload_with_the_installed_launch_and_a_fake_vllm(manager, monkeypatch) -> None:
    """The package's own `peerscope launch`, starting the repository's fake vLLM
    (tests/fake/vllm) on 127.0.0.1: ready, then stopped with its whole process group."""
    from conftest import REPO

    try:
        vllm_manager.launch_help()
    except peerscope.NotAvailable:
        pytest.skip("this build has no peerscope launch")
    monkeypatch.setenv("FAKE_VLLM_MODE", "ok")
    port = _free_port()
    fake_vllm = str(REPO / "tests" / "fake" / "vllm")
    vm = peerscope.VLLMManager({"vllm": fake_vllm, "port": port}, manager("example-4x-a100.topo"))

    async def run() -> None:
        st = await vm.load_model(str(LLAMA_70B), {"timeout": 60})
        assert st["state"] == "ready", st
        assert st["url"] == "http://127.0.0.1:%d" % port
        st = await vm.unload_model()
        assert st["state"] == "stopped", st
        assert any("[peerscope]" in line for line in st["log_tail"])

    asyncio.run(run())


def test_optimize_and_args_by_hugging_face_id(manager, monkeypatch, tmp_path) -> None:
    # Offline, with an empty HF cache: the id is answered by the catalog shipped in the package.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    gm = manager("example-4x-a100.topo")
    vm = peerscope.VLLMManager({"model": "meta-llama/Llama-3.1-70B-Instruct"}, gm)
    out = vm.optimize_tensor_parallelism()
    assert out["basis"] == "model id"
    assert out["recommended_tensor_parallel_size"] == 4
    assert out["max_model_len"] == 17360  # the same facts as the directory fixture
    args = gm.get_vllm_gpu_args(model_path="meta-llama/Llama-3.1-8B-Instruct")
    assert args["engine_args"]["tensor_parallel_size"] >= 1
    with pytest.raises(peerscope.NetworkError):
        gm.get_vllm_gpu_args(model_path="org/not-in-the-catalog")
    with pytest.raises(peerscope.BadInput):
        gm.get_vllm_gpu_args(model_path="bad--org/x")
