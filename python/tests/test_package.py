"""The package itself: versions, ABI, struct layout, the installed files."""

import ctypes
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import peerscope
from peerscope import _lib
from conftest import REPO


def test_versions_match_the_c_library() -> None:
    assert peerscope.library_version() == peerscope.__version__
    assert _lib.lib.ps_abi_version() == peerscope.ABI_VERSION


def test_cmake_project_version_is_the_package_version() -> None:
    text = (REPO / "CMakeLists.txt").read_text()
    m = re.search(r"project\(peerscope VERSION ([0-9.]+)", text)
    assert m and m.group(1) == peerscope.__version__


def test_header_abi_version_is_mirrored() -> None:
    header = (REPO / "include" / "peerscope" / "core.h").read_text()
    m = re.search(r"#define PS_ABI_VERSION (\d+)", header)
    assert m and int(m.group(1)) == peerscope.ABI_VERSION


STRUCTS = [
    "ps_gpu", "ps_pair", "ps_timings", "ps_report", "ps_probe_opts", "ps_verify_opts",
    "ps_model", "ps_plan_request", "ps_plan_item", "ps_plan_option", "ps_plan",
]


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler to read the header's layout")
def test_struct_layout_matches_the_header(tmp_path: Path) -> None:
    lines = ['#include <stdio.h>', '#include <stddef.h>', '#include "peerscope/peerscope.h"', "int main(void) {"]
    for name in STRUCTS:
        struct = getattr(_lib, name)
        lines.append('printf("%s %%zu\\n", sizeof(%s));' % (name, name))
        for field, _ in struct._fields_:
            cfield = "from" if field == "from_" else field
            lines.append('printf("%s.%s %%zu\\n", offsetof(%s, %s));' % (name, field, name, cfield))
    lines.append("return 0; }")
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines))
    exe = tmp_path / "layout"
    subprocess.run(["cc", "-I", str(REPO / "include"), str(src), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split("\n")
    expected = []
    for name in STRUCTS:
        struct = getattr(_lib, name)
        expected.append("%s %d" % (name, ctypes.sizeof(struct)))
        for field, _ in struct._fields_:
            expected.append("%s.%s %d" % (name, field, getattr(struct, field).offset))
    assert [line for line in out if line] == expected


def test_library_and_bundled_files_come_from_the_package() -> None:
    pkg = Path(peerscope.__file__).resolve().parent
    if os.environ.get("PEERSCOPE_LIBRARY"):
        assert Path(peerscope.LIBRARY_PATH) == Path(os.environ["PEERSCOPE_LIBRARY"])
    else:
        assert Path(peerscope.LIBRARY_PATH).resolve().parent == pkg / "lib"
    assert Path(_lib.bundled_path(_lib.PS_BUNDLED_WORKER)).is_file()
    assert (Path(_lib.bundled_path(_lib.PS_BUNDLED_FAKE_DRIVERS)) / "libcuda.so.1").is_file()
    assert (Path(_lib.bundled_path(_lib.PS_BUNDLED_FIXTURES)) / "example-4x-a100.topo").is_file()
