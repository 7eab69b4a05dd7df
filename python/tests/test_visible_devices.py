"""GPUManager under the process's CUDA_VISIBLE_DEVICES: only the GPUs it allows are verified,
planned and benchmarked, named by nvidia-smi's numbers; all_gpus looks at the whole machine."""

import pytest

import peerscope
from conftest import LLAMA_70B


def test_only_the_allowed_gpus(manager, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")
    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)
    gm = manager("hgx-h100-8.topo")
    assert gm.selected_gpus() == [4, 5, 6, 7]
    assert "CUDA_VISIBLE_DEVICES allows: 4,5,6,7" in gm.notice
    info = gm.check_p2p_connectivity()
    assert sorted({k.split("->")[0] for k in info["p2p_matrix"]}) == ["GPU4", "GPU5", "GPU6", "GPU7"]
    assert gm.best_group(4) == [4, 5, 6, 7]
    # The pairs outside were never tested.
    links = gm.check_p2p_connectivity()["links"]
    assert all(v["verdict"] == "ok" for v in links.values())
    args = gm.get_vllm_gpu_args(model_path=str(LLAMA_70B))
    assert args["env"]["CUDA_VISIBLE_DEVICES"] == "4,5,6,7"
    assert args["env"]["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    with pytest.raises(peerscope.InvalidArgument):
        manager("hgx-h100-8.topo", gpus=[0, 1])


def test_fastest_first_indexes_and_all_gpus(manager, monkeypatch: pytest.MonkeyPatch) -> None:
    # mixed-8-mig: A100s 0-3, faster H100s 4-7; CUDA's default numbers the H100s 0-3.
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)
    assert manager("mixed-8-mig.topo").selected_gpus() == [4, 5]
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    assert manager("mixed-8-mig.topo").selected_gpus() == [0, 1]
    whole = manager("mixed-8-mig.topo", all_gpus=True)
    assert whole.selected_gpus() == list(range(8)) and "allows" not in whole.notice


def test_hiding_every_gpu_raises(manager, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(peerscope.InvalidArgument, match="hides every GPU"):
        manager("hgx-h100-8.topo")
