"""The portable paths behind the hand-written AVX-512 kernels (small GEMMs, cross-entropy rows
of <= 16 classes, float32 Adam) run on CPUs without AVX-512. On an AVX-512 machine this re-runs
the tests that cover those kernels with PYCVNN_NO_AVX512=1, which turns them off."""

import os
import pathlib
import subprocess
import sys

import pytest

from pycvnn import _core

HERE = pathlib.Path(__file__).parent
MODULES = ["test_gemm.py", "test_core_kernels.py", "test_core_network.py", "test_cross_backend.py"]


@pytest.mark.skipif(
    not _core._small_gemm_available(),
    reason="no AVX-512 here: the main run already takes the portable paths",
)
def test_portable_paths_pass_the_kernel_tests():
    env = dict(os.environ, PYCVNN_NO_AVX512="1")
    check = "from pycvnn import _core; assert not _core._small_gemm_available()"
    subprocess.run([sys.executable, "-c", check], env=env, check=True)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-x",
            "-p",
            "no:cacheprovider",
            *(str(HERE / m) for m in MODULES),
        ],
        env=env,
        capture_output=True,
        text=True,
        cwd=HERE.parent,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in run.stdout
