"""Every compute method of tconv's three operations, one module each, and their one registry.

The operations, for a :class:`~tconv.spec.ConvSpec` ``spec`` of ``y = conv(x, w)``:

``conv_transpose``
    ``(y, w, spec) -> x``: the transposed convolution = the input gradient ``dL/dx`` for the
    upstream gradient ``y``. Methods: the definition (``scatter``), four readable derivations and
    three fast ones.
``conv``
    ``(x, w, spec) -> y``: the forward convolution (cross-correlation).
``weight_grad``
    ``(x, g, spec) -> dw``: the weight gradient for the upstream gradient ``g``.

A method module defines a function named after each operation it computes; the function takes
its operands already in the accumulation dtype (:func:`tconv._arrays.compute_dtype`) and returns
the result in that dtype. ``auto`` (:mod:`.auto`) picks a fast method by a cost model; the naive
loops the methods are tested against live in :mod:`.reference`.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Callable

from ..spec import ConvSpecError
from . import (commuted, direct, fast_gemm, fast_native, fast_polyphase, fast_polyphase_cf, gemm,
               im2col, matrix, polyphase, scatter, zero_insertion)

OPERATIONS = ("conv_transpose", "conv", "weight_grad")


@dataclass(frozen=True)
class Method:
    """One way to compute one operation: ``run(a, b, spec)`` from module ``module``."""

    name: str
    operation: str
    module: ModuleType

    @property
    def run(self) -> Callable:
        return getattr(self.module, self.operation)

    def sums_every_product(self, spec, dtype) -> bool:
        """Whether the method multiplies every product of the definition on ``spec`` in
        compute dtype ``dtype`` (its module's ``sums_every_product``; False where it has none),
        so that a finite result proves that no product was NaN or infinite."""
        check = getattr(self.module, "sums_every_product", None)
        return check is not None and check(self.operation, spec, dtype)


#: operation -> method name -> module, in the order of the tables and of ``tconv.METHODS``.
_MODULES: dict[str, dict[str, ModuleType]] = {
    "conv_transpose": {
        "scatter": scatter, "zero_insertion": zero_insertion, "commuted": commuted,
        "matrix": matrix, "gemm": gemm, "polyphase": polyphase, "fast_gemm": fast_gemm,
        "fast_polyphase": fast_polyphase, "fast_polyphase_cf": fast_polyphase_cf},
    "conv": {"direct": direct, "im2col": im2col},
    "weight_grad": {"direct": direct, "im2col": im2col},
}
if fast_native.AVAILABLE:     # the compiled kernels, registered where the extension built
    for _modules in _MODULES.values():
        _modules["fast_native"] = fast_native

REGISTRY: dict[str, dict[str, Method]] = {
    op: {name: Method(name, op, module) for name, module in modules.items()}
    for op, modules in _MODULES.items()}


def names(operation: str) -> tuple[str, ...]:
    """The methods of ``operation``, ``"auto"`` excluded."""
    return tuple(REGISTRY[operation])


#: The methods of conv_transpose / conv_input_grad (``"auto"`` excluded).
METHODS: tuple[str, ...] = names("conv_transpose")
#: The methods of conv and conv_weight_grad (``"auto"`` excluded): ``direct``, one matrix product
#: per kernel tap, ``im2col``, one GEMM per cache-sized block, and (where it built) the compiled
#: ``fast_native``; ``auto`` picks by :func:`tconv.methods.auto.choose`.
CONV_METHODS: tuple[str, ...] = names("conv")


def check(operation: str, method) -> None:
    """A ConvSpecError unless ``method`` is ``"auto"`` or a method of ``operation``."""
    if method == "fast_native" and not fast_native.AVAILABLE:
        raise ConvSpecError("method='fast_native' needs the compiled extension tconv._native, "
                            "which is not built in this install (no C compiler at install "
                            "time); method='auto' runs the NumPy methods", "method")
    if not isinstance(method, str) or (method != "auto" and method not in REGISTRY[operation]):
        raise ConvSpecError(f"method={method!r} is not one of {('auto',) + names(operation)}")


def get(operation: str, method: str) -> Method:
    """The registered method (``"auto"`` is resolved by :func:`tconv.methods.auto.choose`)."""
    check(operation, method)
    return REGISTRY[operation][method]
