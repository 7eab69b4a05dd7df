"""The origin's test script: its output for the 4-GPU example machine, line by line against
the origin document's "Expected Output" block."""

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

from conftest import FIXTURES, LLAMA_70B, REPO

HERE = Path(__file__).resolve().parent
ORIGIN_DOC = REPO.parent / "shared" / "seed" / "P2P_TENSOR_PARALLELISM.md"
STORED = HERE / "origin_expected_output.txt"  # a copy of the block, for clones without shared/


def origin_block_from_doc(text: str) -> List[str]:
    start = text.index("### Expected Output")
    begin = text.index("```\n", start) + 4
    end = text.index("```", begin)
    return text[begin:end].splitlines()


def expected_lines() -> List[str]:
    if ORIGIN_DOC.is_file():
        return origin_block_from_doc(ORIGIN_DOC.read_text())
    return STORED.read_text().splitlines()


def test_stored_copy_is_the_origin_block() -> None:
    if not ORIGIN_DOC.is_file():
        pytest.skip("the origin document is not beside this checkout")
    assert STORED.read_text().splitlines() == origin_block_from_doc(ORIGIN_DOC.read_text())


def run_script(*args: str, cache_dir: str) -> List[str]:
    env = dict(os.environ, PEERSCOPE_CACHE_DIR=cache_dir)
    out = subprocess.run(
        [sys.executable, str(REPO / "test_p2p_tensor_parallel.py"), *args],
        check=True, capture_output=True, text=True, env=env, cwd=str(REPO),
    )
    return out.stdout.splitlines()


def assert_matches_origin(actual: List[str]) -> None:
    expected = expected_lines()
    dots = expected.index("  ...")
    head, tail = expected[:dots], expected[dots + 1 :]
    start = actual.index("Testing P2P Connectivity Detection")
    block = actual[start:]
    # the lines before "..." one for one
    assert block[: len(head)] == head
    # "..." stands for the remaining pairs, then the closing lines one for one
    rest = block[len(head) :]
    remaining = ["  GPU%d->GPU%d: \u2713" % (a, b) for a in range(2, 4) for b in range(4) if a != b]
    assert rest[: len(remaining)] == remaining
    assert rest[len(remaining) : len(remaining) + len(tail)] == tail


def test_example_machine_prints_the_origin_report(cache_dir: str) -> None:
    lines = run_script("--fixture", str(FIXTURES / "example-4x-a100.topo"), cache_dir=cache_dir)
    assert lines[0] == "Testing P2P Connectivity Detection"
    assert_matches_origin(lines)
    assert "Recommended Tensor Parallel Configuration" in lines
    bench = lines.index("P2P Benchmark (measured: P2P enabled vs disabled)")
    assert lines[bench + 2].startswith("SIMULATED: fake drivers")
    copies = [line for line in lines[bench:] if line.startswith("  GPU0->GPU1 copy: P2P enabled ")]
    assert copies and "disabled" in copies[0]
    assert any(line.startswith("  all-reduce GPUs 0,1,2,3 ") and "one-shot P2P kernel" in line
               for line in lines[bench:])
    assert not any(line.startswith("  not measured:") for line in lines[bench:])


def test_without_a_driver_it_runs_on_the_bundled_example_and_says_so(cache_dir: str) -> None:
    lines = run_script(cache_dir=cache_dir)
    if not lines[0].startswith("peerscope: no NVIDIA driver"):
        pytest.skip("this machine has an NVIDIA driver")
    assert "bundled example" in lines[0]
    assert_matches_origin(lines)


def test_with_a_model_and_a_broken_pair(cache_dir: str) -> None:
    lines = run_script(
        "--fixture", str(FIXTURES / "fault-corrupt.topo"), "--model", str(LLAMA_70B), cache_dir=cache_dir
    )
    assert "Tensor Parallel Group Connected: False" in lines
    assert "  GPU1->GPU2: \u2717" in lines
    assert "Basis: model directory" in lines
    assert any(line.startswith("  export NCCL_P2P_DISABLE=1") for line in lines)
    assert any("warning: GPU1->GPU2 is claimed P2P by the driver but failed" in line for line in lines)
    assert not any(line.startswith("  export NCCL_P2P_DISABLE=0") for line in lines)


def test_console_script(cache_dir: str) -> None:
    exe = shutil.which("peerscope-p2p-test")
    if exe is None:
        pytest.skip("console script not on PATH (package not installed in this environment)")
    env = dict(os.environ, PEERSCOPE_CACHE_DIR=cache_dir)
    out = subprocess.run(
        [exe, "--ascii", "--fixture", str(FIXTURES / "example-4x-a100.topo")],
        check=True, capture_output=True, text=True, env=env,
    ).stdout.splitlines()
    assert "  GPU0->GPU1: OK" in out
