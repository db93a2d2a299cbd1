"""The exact engine against Fractions and the float64 reference."""
from fractions import Fraction

import numpy as np

from tconv import exact
from tconv.methods import reference, scatter
from tconv.spec import ConvSpec


def test_exact_equals_fraction_arithmetic():
    spec = ConvSpec.forward((1, 2, 5), (2, 1, 3), stride=2, padding=((1, 0),), groups=2)
    rng = np.random.default_rng(3)
    y = (rng.standard_normal(spec.output_shape) * 2.0 ** rng.integers(-60, 60, spec.output_shape))
    w = rng.standard_normal(spec.weight_shape).astype(np.float32)
    frac = np.vectorize(Fraction, otypes=[object])
    truth = scatter.conv_transpose(frac(y), frac(w.astype(np.float64)), spec)
    np.testing.assert_array_equal(exact.conv_transpose(y, w, spec),
                                  np.vectorize(float)(truth).astype(np.float64))


def test_exact_sums_what_float64_cannot():
    """1e20 + 1 - 1e20: float64 loses the 1; the exact engine keeps it."""
    spec = ConvSpec.forward((1, 3, 1), (1, 3, 1))
    x = np.array([[[1e20], [1.0], [-1e20]]])
    w = np.ones((1, 3, 1))
    assert reference.conv(x, w, spec)[0, 0, 0] == 0.0
    assert exact.conv(x, w, spec)[0, 0, 0] == 1.0
