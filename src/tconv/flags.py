"""The command line's spelling of a spec: parse flags into ConvSpec, and write a spec as flags.

One place for the flag format, so that every repro command tconv prints runs as printed.
"""
from __future__ import annotations

import shlex

import numpy as np

from .spec import ConvSpec, ConvSpecError


def ints(flag: str, text: str) -> tuple[int, ...]:
    """``"1,2"`` / ``"1x2"`` / ``"3"`` -> ints."""
    parts = text.replace("x", ",").split(",")
    try:
        return tuple(int(p) for p in parts)
    except ValueError:
        raise ConvSpecError(f"{flag} takes integers separated by ',' or 'x', got {text!r}",
                            flag) from None


def per_dim(flag: str, text: str, minimum: int | None = None):
    """One int (for every dim) or one per dim, each at least ``minimum`` if given."""
    values = ints(flag, text)
    if minimum is not None and any(v < minimum for v in values):
        raise ConvSpecError(f"{flag} must be >= {minimum} in every dim, got {text!r}", flag)
    return values[0] if len(values) == 1 else values


def padding(text: str):
    """``same`` / ``valid`` / ``1`` / ``1,2`` / ``1:2,0:1`` (low:high per dim)."""
    if text.lower() in ("same", "valid"):
        return text.lower()
    if ":" not in text:
        return per_dim("--padding", text)
    pairs = []
    for part in text.split(","):
        halves = part.split(":")
        if len(halves) != 2 or not all(halves):
            raise ConvSpecError(f"--padding pairs are low:high, got {part!r} in {text!r}",
                                "--padding")
        pairs.append((ints("--padding", halves[0])[0], ints("--padding", halves[1])[0]))
    return tuple(pairs)


def dtype(text: str) -> np.dtype:
    """A real NumPy dtype, in the machine's byte order (``'>f8'`` is float64: the values are
    the same, and the frameworks take native byte order only)."""
    try:
        result = np.dtype(text)
    except TypeError:
        raise ConvSpecError(f"--dtype {text!r} is not a NumPy dtype", "--dtype") from None
    if result.kind not in "iuf":
        raise ConvSpecError(f"--dtype must be a real integer or float dtype, got {result}",
                            "--dtype")
    return result.newbyteorder("=")


def build_spec(input: str, out_channels: int, kernel: str, stride: str, padding_: str,
               dilation: str, groups: int, output_padding: str | None = None) -> ConvSpec:
    """The spec the flags describe (``--input`` is the forward input, x)."""
    shape = ints("--input", input)
    if len(shape) < 3:
        raise ConvSpecError(f"--input must be N,C,*spatial with at least one spatial dim, "
                            f"got {input!r}", "--input")
    if shape[1] < 1:
        raise ConvSpecError(f"--input must have at least one channel (its second entry), got "
                            f"{input!r}", "--input")
    ndim = len(shape) - 2
    k = per_dim("--kernel", kernel, minimum=1)
    k = (k,) * ndim if isinstance(k, int) else k
    if len(k) != ndim:
        raise ConvSpecError(f"--kernel has {len(k)} sizes but --input has {ndim} spatial dims",
                            "--kernel")
    if out_channels < 1:
        raise ConvSpecError(f"--out-channels must be >= 1, got {out_channels}", "--out-channels")
    if groups < 1:
        raise ConvSpecError(f"--groups must be >= 1, got {groups}", "--groups")
    if shape[1] % groups or out_channels % groups:
        raise ConvSpecError(
            f"--groups {groups}: groups={groups} must divide the input channels {shape[1]} "
            f"(--input {input}) and --out-channels {out_channels}", "--groups")
    w_shape = (out_channels, shape[1] // groups) + k
    return ConvSpec.forward(
        shape, w_shape, stride=per_dim("--stride", stride), padding=padding(padding_),
        dilation=per_dim("--dilation", dilation), groups=groups,
        output_padding=None if output_padding is None else per_dim("--output-padding",
                                                                   output_padding))


def _join(values) -> str:
    return ",".join(str(v) for v in values)


def spec_flags(spec: ConvSpec) -> list[str]:
    """The flags that rebuild ``spec`` exactly with :func:`build_spec`."""
    flags = ["--input", _join(spec.input_shape), "--out-channels", str(spec.out_channels),
             "--kernel", _join(spec.kernel_size), "--stride", _join(spec.stride)]
    sym = spec.symmetric_padding
    flags += ["--padding", _join(sym) if sym is not None else
              ",".join(f"{lo}:{hi}" for lo, hi in spec.padding)]
    flags += ["--dilation", _join(spec.dilation), "--groups", str(spec.groups)]
    if spec.output_padding_exceeds_stride:  # not derivable from the input size
        flags += ["--output-padding", _join(spec.output_padding)]
    return flags


def command(*words: str) -> str:
    return " ".join(shlex.quote(w) for w in words)
