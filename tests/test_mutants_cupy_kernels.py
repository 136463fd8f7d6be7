"""CuPyFusedKernels' generic route keeps the dropout scale (no kernel is run, so the stand-in
``cupy`` of tests/cuda_cpu.py needs no compiled library and no C++ compiler)."""

from __future__ import annotations

import numpy as np
import pytest
from cuda_cpu import StandInCuPy

from xnn.backends.cuda_sources import SOURCES
from xnn.backends.cupy_kernels import CuPyFusedKernels


class Halve:
    """An activation with no CUDA forms (not registered): y = x / 2."""

    def apply(self, xp, x):
        return x / 2

    def derivative(self, xp, output_grad, output):
        return output_grad / 2


Z = np.array([[1.0, 2.0], [3.0, 4.0]])
BIAS = np.array([[1.0, 0.0]])  # (z + b) / 2 = [[1, 1], [2, 2]]


@pytest.mark.parametrize(("scale", "expected"), [
    (np.array([[1.0, 0.0], [0.0, 1.0]]), [[1.0, 0.0], [0.0, 2.0]]),  # a dropout mask
    (0.5, [[0.5, 0.5], [1.0, 1.0]]),  # keep_prob at inference
    (None, [[1.0, 1.0], [2.0, 2.0]]),  # no dropout
])
def test_an_activation_without_a_kernel_is_scaled_by_its_dropout(scale, expected):
    fused = CuPyFusedKernels(StandInCuPy(SOURCES, libraries={}))
    np.testing.assert_array_equal(fused.bias_activation(Z, BIAS, Halve(), scale), expected)
