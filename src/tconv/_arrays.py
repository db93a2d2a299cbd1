"""Array helpers shared by the methods: dtypes, padding/cropping, zero insertion, kernel flips.

Nothing here knows a shape formula; sizes come from :class:`tconv.spec.ConvSpec`.
"""
from __future__ import annotations

import numpy as np

from .spec import ConvSpecError


def as_array(name: str, value) -> np.ndarray:
    """``np.asarray(value)``, or a ConvSpecError naming ``name`` when NumPy cannot make an
    array of it (ragged nested lists, say)."""
    try:
        if hasattr(value, "detach") and hasattr(value, "numpy"):
            # a torch tensor: its values, whether or not it requires grad or lives on a device
            value = value.detach().cpu().numpy()
        return np.asarray(value)
    except (ValueError, TypeError, RuntimeError) as e:
        raise ConvSpecError(f"{name} is not an array: {e}", name) from None


def result_dtype(*arrays: np.ndarray) -> np.dtype:
    """The dtype of the result: NumPy's promotion of the operands, which must be real numbers."""
    for a in arrays:
        if a.dtype.kind not in "iuf":
            raise ConvSpecError(
                f"dtype must be a real integer or floating NumPy dtype, got {a.dtype}")
    return np.result_type(*arrays)


def compute_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype to accumulate in.

    Integers accumulate in int64: sums and products modulo 2**64 are exact and order-free, so
    casting back to a narrower integer gives NumPy's wrap-around result bit for bit, whichever
    algorithm summed. float16 accumulates in float32 (as frameworks do); other floats in themselves.
    """
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        return np.dtype(np.int64)
    if dtype == np.float16:
        return np.dtype(np.float32)
    return dtype


def as_compute(a: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``a`` in the accumulation dtype of ``dtype`` (wrapping for unsigned 64-bit integers)."""
    return np.asarray(a).astype(compute_dtype(dtype), copy=False)


def pad_or_crop(a: np.ndarray, pads, first_axis: int = 2) -> np.ndarray:
    """Zero-pad (positive) or crop (negative) ``len(pads)`` axes from ``first_axis`` on by
    ``(low, high)``; axes after them (channels-last data) are left alone."""
    pads = list(pads)
    trailing = a.ndim - first_axis - len(pads)
    widths = ([(0, 0)] * first_axis + [(max(lo, 0), max(hi, 0)) for lo, hi in pads]
              + [(0, 0)] * trailing)
    if any(w != (0, 0) for w in widths):
        a = np.pad(a, widths)
    crop = tuple(slice(max(-lo, 0), a.shape[first_axis + i] - max(-hi, 0))
                 for i, (lo, hi) in enumerate(pads))
    return a[(slice(None),) * first_axis + crop]


def insert_zeros(a: np.ndarray, step, first_axis: int = 2) -> np.ndarray:
    """Put ``step - 1`` zeros between neighbours along each axis from ``first_axis`` on.

    A length-``n`` axis becomes ``(n - 1) * step + 1`` long; ``a`` sits at multiples of ``step``.
    """
    spatial = a.shape[first_axis:]
    shape = a.shape[:first_axis] + tuple((n - 1) * s + 1 for n, s in zip(spatial, step))
    out = np.zeros(shape, dtype=a.dtype)
    out[(slice(None),) * first_axis + tuple(slice(None, None, s) for s in step)] = a
    return out


def flip_spatial(a: np.ndarray, first_axis: int = 2) -> np.ndarray:
    """Reverse every axis from ``first_axis`` on (the 180-degree rotation in 2-d)."""
    return a[(slice(None),) * first_axis + (slice(None, None, -1),) * (a.ndim - first_axis)]


def swap_group_channels(w: np.ndarray, groups: int) -> np.ndarray:
    """``(A, B, *k) -> (groups * B, A / groups, *k)``, swapping the two channel axes per group.

    Turns a forward weight ``(C_out, C_in/g, *k)`` into the weight of the convolution that maps
    C_out channels back to C_in channels, group by group.
    """
    a, b = w.shape[:2]
    k = w.shape[2:]
    w = w.reshape((groups, a // groups, b) + k)  # (g, A/g, B, *k)
    w = np.swapaxes(w, 1, 2)                     # (g, B, A/g, *k)
    return w.reshape((groups * b, a // groups) + k)
