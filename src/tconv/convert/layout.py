"""Layouts of a layer's data and weight, and the weight transform between two frameworks.

tconv's own layout (PyTorch's, ONNX's) is data ``(N, C, *spatial)`` and the transposed layer's
weight ``(C_in, C_out/groups, *k)``, where ``C_in`` and ``C_out`` are the channels of the
transposed layer's input and output. A framework's array is a permutation of tconv's; a weight
may also be the kernel of the equivalent *ordinary* convolution (spatially flipped, channels
swapped per group), which is what ``lax.conv_transpose`` without ``transpose_kernel``,
``lax.conv_general_dilated`` and Flax use.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .._arrays import insert_zeros, swap_group_channels


def inverse(perm: Sequence[int]) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argsort(perm))


def permuted(shape, perm) -> tuple[int, ...]:
    return tuple(shape[p] for p in perm)


def channels_last(nd: int) -> tuple[int, ...]:
    """``(N, C, *sp) -> (N, *sp, C)`` as a transpose permutation."""
    return (0, *range(2, nd + 2), 1)


def identity(nd: int) -> tuple[int, ...]:
    return tuple(range(nd + 2))


def kernel_last(nd: int) -> tuple[int, ...]:
    """``(A, B, *k) -> (*k, B, A)``: TensorFlow's ``[*k, out, in]`` from tconv's ``(in, out, *k)``,
    and lax's ``HWIO`` from the ordinary kernel ``(O, I, *k)``."""
    return (*range(2, nd + 2), 1, 0)


@dataclass(frozen=True)
class Layout:
    """Where a framework keeps the axes of one layer's data and weight.

    Attributes
    ----------
    data, output : tuple of int
        The framework's input (output) array is ``np.transpose(a, data)`` of tconv's
        ``(N, C, *spatial)`` array ``a``.
    weight : tuple of int
        The framework's weight is ``np.transpose(k, weight)`` of the logical kernel ``k``.
    ordinary : bool
        False: ``k`` is tconv's weight ``(C_in, C_out/groups, *k)``. True: ``k`` is the kernel of
        the equivalent ordinary (zero-inserted) convolution, ``(C_out, C_in/groups, *k)`` with the
        channels swapped per group and every spatial axis reversed.
    """

    data: tuple[int, ...]
    output: tuple[int, ...]
    weight: tuple[int, ...]
    ordinary: bool = False

    @classmethod
    def plain(cls, nd: int) -> "Layout":
        """tconv's own layout (PyTorch's, ONNX's)."""
        return cls(identity(nd), identity(nd), identity(nd))

    @property
    def data_name(self) -> str:
        """``"NHWC"`` and the like: the input's axes."""
        return _axes_name(self.data)

    @property
    def output_name(self) -> str:
        """The output's axes."""
        return _axes_name(self.output)

    def weight_name(self, groups: int) -> str:
        """``"(kH, kW, C_out, C_in)"``: the axes of the weight, in tconv's channel names."""
        nd = len(self.weight) - 2
        per = "/groups" if groups > 1 else ""
        channels = ["C_out", f"C_in{per}"] if self.ordinary else ["C_in", f"C_out{per}"]
        kernel = ["k" + c for c in _letters(nd)] if nd <= 3 else [f"k{i}" for i in range(nd)]
        if self.ordinary:
            kernel = [k + " flipped" for k in kernel]
        tokens = channels + kernel
        return "(" + ", ".join(tokens[p] for p in self.weight) + ")"


def _axes_name(perm) -> str:
    tokens = ["N", "C"] + _letters(len(perm) - 2)
    text = [tokens[p] for p in perm]
    return "".join(text) if len(text) <= 5 else ",".join(text)


def _letters(nd: int) -> list[str]:
    return list("DHW"[3 - nd:]) if nd <= 3 else [f"S{i}" for i in range(nd)]


@dataclass(frozen=True)
class WeightTransform:
    """Source weight array -> target weight array: transpose, flip, then (groups only) regroup.

    ``apply(w) = swap(np.flip(np.transpose(w, permute), flip))`` where ``swap`` (only when
    ``swap_groups > 1``) swaps the two channel axes ``swap_axes`` within each of the
    ``swap_groups`` groups: ``(A, B) -> (swap_groups * B, A / swap_groups)``. The swap is needed
    between tconv's weight and the kernel of the ordinary convolution with groups; with one group
    it is a plain exchange of the axes and is part of ``permute``.
    """

    permute: tuple[int, ...]
    flip: tuple[int, ...] = ()
    swap_groups: int = 1
    swap_axes: tuple[int, int] | None = None
    #: per axis of the target's weight, the dilation written into it as zeros (empty: none)
    dilate: tuple[int, ...] = ()

    @classmethod
    def between(cls, source: Layout, target: Layout, groups: int,
                dilation=()) -> "WeightTransform":
        """The transform from ``source``'s weight array to ``target``'s for the same layer;
        ``dilation`` (per spatial dim): the target's kernel is the source's dilated by zeros."""
        back = inverse(source.weight)
        permute = [back[p] for p in target.weight]
        dilate = (tuple(dilation[p - 2] if p >= 2 else 1 for p in target.weight)
                  if dilation and max(dilation) > 1 else ())
        if source.ordinary == target.ordinary:
            return cls(tuple(permute), dilate=dilate)
        flip = tuple(j for j, p in enumerate(target.weight) if p >= 2)
        a, b = target.weight.index(0), target.weight.index(1)
        if groups == 1:
            permute[a], permute[b] = permute[b], permute[a]
            return cls(tuple(permute), flip, dilate=dilate)
        return cls(tuple(permute), flip, groups, (a, b), dilate)

    @classmethod
    def identity(cls, nd: int) -> "WeightTransform":
        return cls(identity(nd))

    @property
    def is_identity(self) -> bool:
        return (self.permute == tuple(range(len(self.permute))) and not self.flip
                and self.swap_groups == 1 and not self.dilate)

    def apply(self, w) -> np.ndarray:
        """The target's weight array from the source's ``w``."""
        w = np.transpose(np.asarray(w), self.permute)
        if self.flip:
            w = np.flip(w, self.flip)
        if self.swap_groups > 1:
            front = np.moveaxis(w, self.swap_axes, (0, 1))
            w = np.moveaxis(swap_group_channels(front, self.swap_groups), (0, 1), self.swap_axes)
        if self.dilate:
            w = insert_zeros(w, self.dilate, first_axis=0)
        return np.ascontiguousarray(w)

    def code(self, source: str = "w", target: str = "weight") -> list[str]:
        """NumPy lines computing ``target`` from ``source``, exactly as :meth:`apply` does."""
        if self.is_identity:
            return [f"{target} = np.ascontiguousarray({source})"]
        lines = [f"{target} = np.transpose({source}, {self.permute})"]
        if self.flip:
            lines.append(f"{target} = np.flip({target}, axis={self.flip})")
        if self.swap_groups > 1:
            a, b = self.swap_axes
            g = self.swap_groups
            lines += [
                f"# swap the channel axes {a} and {b} within each of the {g} groups",
                f"{target} = np.moveaxis({target}, ({a}, {b}), (0, 1))",
                f"a, b, *rest = {target}.shape",
                f"{target} = {target}.reshape({g}, a // {g}, b, *rest).swapaxes(1, 2)",
                f"{target} = {target}.reshape({g} * b, a // {g}, *rest)",
                f"{target} = np.moveaxis({target}, (0, 1), ({a}, {b}))"]
        if self.dilate:
            lines += [f"# the dilation {self.dilate} (per axis) as zeros between the taps",
                      f"dilated = np.zeros([(n - 1) * d + 1 for n, d in zip({target}.shape, "
                      f"{self.dilate})], {target}.dtype)",
                      f"dilated[tuple(slice(None, None, d) for d in {self.dilate})] = {target}",
                      f"{target} = dilated"]
        return lines + [f"{target} = np.ascontiguousarray({target})"]

    def to_dict(self) -> dict:
        return {"permute": list(self.permute), "flip": list(self.flip),
                "swap_groups": self.swap_groups,
                "swap_axes": None if self.swap_axes is None else list(self.swap_axes),
                "dilate": list(self.dilate)}
