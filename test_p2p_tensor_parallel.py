#!/usr/bin/env python3
"""The origin project's P2P test script, on peerscope: detects the GPUs, verifies P2P between
every pair with real transfers, prints the origin's report, recommends the tensor-parallel
configuration and runs the P2P enabled/disabled benchmark. Without GPUs it runs on the
bundled example machine and says so. Same as the `peerscope-p2p-test` console script.

Needs the package: `pip install .` from this directory."""

import sys

try:
    from peerscope.p2p_test import main
except ImportError as exc:
    sys.exit("test_p2p_tensor_parallel.py: %s (install the package first: pip install .)" % exc)

if __name__ == "__main__":
    sys.exit(main())
