"""GPU hook: where annvil was built with CUDA and a device exists, the runtime
sees it; elsewhere these tests skip and say why."""
import pytest

import annvil

pytestmark = pytest.mark.gpu


def test_cpu_build_reports_no_gpu():
    if annvil._core.HAVE_CUDA:
        pytest.skip("built with CUDA: covered by test_gpu_visible")
    assert annvil.get_num_gpus() == 0
    assert not annvil.is_cuda_available()


def test_gpu_visible():
    if not annvil._core.HAVE_CUDA:
        pytest.skip("annvil was built without a CUDA compiler")
    n = annvil.get_num_gpus()
    if n == 0:
        pytest.skip("no CUDA device on this machine")
    assert n >= 1 and annvil.is_cuda_available()
