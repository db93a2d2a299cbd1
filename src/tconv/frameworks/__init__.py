"""Adapters that compute a spec's input gradient through a framework, imported only when used.

Each backend module has ``NAME``, ``way_names(ndim)`` and
``input_grad_ways(spec, w, g) -> dict[str, ndarray | NotExpressible | KnownDifference]``: one
entry per way the framework offers, the result in ``np.result_type(g, w)`` (the dtype verify judges
in), or why that way cannot express the spec, or a result wrapped with the documented reason it
differs.
Framework conventions live here and nowhere else in the core.
"""
from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from types import ModuleType

from ..spec import ConvSpecError

#: backend name -> module, in the order of the verify table.
BACKENDS = {"torch": "tconv.frameworks.torch", "jax": "tconv.frameworks.jax",
            "tensorflow": "tconv.frameworks.tensorflow",
            "onnx": "tconv.frameworks.onnx"}


@dataclass(frozen=True)
class NotExpressible:
    """A way of computing the input gradient that cannot express a spec, and why."""

    reason: str


@dataclass(frozen=True)
class KnownDifference:
    """A result the framework computes differently on purpose or by a known, reported bug.

    ``verify`` still compares it: equal to the exact result is a PASS (the bug is fixed in the
    installed version); different is reported as KNOWN with ``reason``, not as a failure.
    """

    reason: str
    result: object


def load(name: str) -> ModuleType:
    if name not in BACKENDS:
        raise ConvSpecError(f"backend {name!r} is not one of {tuple(BACKENDS)}")
    return importlib.import_module(BACKENDS[name])


#: backend name -> the top-level package its framework needs (checked without importing it).
PACKAGES = {"torch": "torch", "jax": "jax", "tensorflow": "tensorflow", "onnx": "onnx"}


def available(name: str) -> bool:
    """Whether backend ``name``'s framework is installed (found, not imported: that is slow)."""
    return importlib.util.find_spec(PACKAGES[name]) is not None


def installed() -> list[str]:
    """The backends whose framework is installed."""
    return [name for name in BACKENDS if available(name)]


def parse(names: str | None) -> list[str]:
    """``"torch,jax"`` / ``"all"`` / ``"none"`` / None (= installed) -> backend names."""
    if names is None or names == "installed":
        return installed()
    if names == "all":
        return list(BACKENDS)
    if names in ("", "none"):
        return []
    result = [n.strip() for n in names.split(",") if n.strip()]
    for name in result:
        load(name)
    return result
