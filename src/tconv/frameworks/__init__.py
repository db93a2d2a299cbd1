"""Everything tconv knows about each framework, one class per framework, found by a registry.

A framework is a subclass of :class:`Framework` with a ``name``; defining the class registers
it (``__init_subclass__``), and :func:`all_frameworks` imports every module of this package once,
so a new ``frameworks/<name>.py`` needs no edit anywhere else. Framework modules import nothing
heavy at import time: the framework itself is imported by the methods that use it, so
listing, parsing names and converting parameters never start TensorFlow or JAX.

A class answers for its framework:

* **ways** (``verify``, ``sweep``): :meth:`Framework.way_names` and
  :meth:`Framework.input_grad_ways`, one entry per way the framework offers to compute a spec's
  input gradient: the result in ``np.result_type(g, w)``, or :class:`NotExpressible` with why
  the way cannot express the spec, or :class:`KnownDifference` for a documented bug, or
  :class:`Refused` when a converter refuses the layer, :class:`Broken` when what it wrote fails
  in its runtime, :class:`Crashed` when its process died;
* **bench**: :meth:`Framework.benchmark_callables`;
* **convert**: its transposed-conv layer (``read``, ``write``, ``from_flags``, ``code``,
  ``pad_code``, ``cannot_run``, ``prepare``), in :mod:`tconv.convert`'s window model.

Framework conventions live in these modules and nowhere else.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import pkgutil
import sys
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..spec import ConvSpec, ConvSpecError


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


@dataclass(frozen=True)
class Refused:
    """A converter (or the runtime loading what it wrote) rejected a layer it was given.

    Unlike :class:`NotExpressible`, the layer exists in the source framework and the converter was
    asked to convert it: the refusal is the converter's answer, recorded with its message.
    ``verify`` shows it as REFUSED, which is not a disagreement.
    """

    reason: str


@dataclass(frozen=True)
class Broken:
    """A converter accepted a layer but what it wrote fails to load or run in its runtime.

    ``verify`` shows it as FAIL with the runtime's message: the way gave no result for a layer
    it took, which is a disagreement like a wrong number.
    """

    reason: str


@dataclass(frozen=True)
class Crashed:
    """The process that ran a way died (a signal, an abort) or did not answer in time.

    ``verify`` shows it as CRASH, a finding like a wrong result: a valid layer should convert or
    be refused, never take the converter down.
    """

    reason: str


#: Why a way that builds a model for a sample input cannot run an empty batch.
EMPTY_BATCH = ("an empty batch (N = 0): the deploy ways build a model for a sample input and "
               "compare its values; there are none")


def first_line(error: BaseException) -> str:
    """The line of an error message that says what went wrong (onnxruntime's status message,
    else the first line that is not part of a traceback), with the error's type."""
    text = str(error)
    if "Status Message: " in text:
        return text.split("Status Message: ", 1)[1].strip().splitlines()[0][:300]
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("Traceback", "File ")):
            return f"{type(error).__name__}: {line[:300]}"
    return type(error).__name__


def model_limits(spec: ConvSpec, dtype, layer: str, dtypes=("float32",)) -> str | None:
    """Why a way that builds a model of ``layer`` (in ``dtypes``, 1-3 spatial dims) for a
    sample input cannot run ``spec`` with data of ``dtype``, or None."""
    if spec.batch == 0:
        return EMPTY_BATCH
    name = np.dtype(dtype).name
    if name not in dtypes:
        return f"{layer} is {' or '.join(dtypes)} here; the data is {name}"
    if spec.ndim > 3:
        return f"{layer} is 1-d, 2-d or 3-d; this spec has {spec.ndim}"
    return None


class Framework:
    """One framework: its ways, its bench callables and its transposed-conv layer.

    Subclasses set the class attributes and override what the framework has; the defaults say
    "nothing": no ways, no bench callables, no layer.
    """

    #: The framework's name in tconv (CLI words, JSON, ``Layer.framework``).
    name: ClassVar[str] = ""
    #: Other words accepted for it (``"tf"`` for ``"tensorflow"``).
    aliases: ClassVar[tuple[str, ...]] = ()
    #: Its name in prose ("PyTorch"); its ``name`` if not given.
    title: ClassVar[str] = ""
    #: The top-level packages it needs, its own first (checked without importing them).
    packages: ClassVar[tuple[str, ...]] = ()
    #: Where it sorts in tables (smaller first).
    rank: ClassVar[int] = 100
    #: The names of its ways in table order, ``{n}`` standing for the number of spatial dims
    #: (``"F.conv_transpose{n}d"``); :meth:`way_names` fills it in.
    ways: ClassVar[tuple[str, ...]] = ()

    # -- convert: the layer ---------------------------------------------------------------------
    #: The layer call in flag errors (e.g. "torch.nn.ConvTransposeNd"); "" = no layer to convert.
    flag_call: ClassVar[str] = ""
    #: The flags of ``tconv convert`` beyond the common ones that this framework takes.
    flags_taken: ClassVar[tuple[str, ...]] = ()
    #: Why the other flags do not apply, for the error message.
    flag_hint: ClassVar[str] = ""
    #: The reader arguments that are array shapes, not layer arguments.
    shape_args: ClassVar[tuple[str, ...]] = ()
    #: Why a conversion to this framework may need a crop (printed with the crop).
    crop_reason: ClassVar[str] = ""
    #: Whether a dilated layer is always written with a zero-dilated kernel (no dilation).
    dilates_kernel: ClassVar[bool] = False

    _classes: ClassVar[dict[str, type["Framework"]]] = {}

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name:
            cls.title = cls.title or cls.name
            Framework._classes[cls.name] = cls

    # -- facts --------------------------------------------------------------------------------

    @property
    def package(self) -> str:
        """The framework's own package."""
        return self.packages[0]

    def available(self) -> bool:
        """Whether the framework is installed (found, not imported: importing is slow)."""
        return all(importlib.util.find_spec(name) is not None for name in self.packages)

    def describe(self) -> str:
        """One line for reports: the installed version and any setting that changes results."""
        from importlib.metadata import PackageNotFoundError, version

        number = getattr(sys.modules.get(self.package), "__version__", None)
        if number is None:
            try:
                number = version(self.package)
            except PackageNotFoundError:
                return self.package
        return f"{self.package} {number}"

    # -- ways -----------------------------------------------------------------------------------

    @classmethod
    def way_names(cls, ndim: int) -> list[str]:
        """The ways, in table order, for specs of ``ndim`` spatial dims."""
        return [way.format(n=ndim) for way in cls.ways]

    def input_grad_ways(self, spec: ConvSpec, w, g) -> dict:
        """``{way: ndarray | NotExpressible | KnownDifference | Refused | Broken | Crashed}`` for
        ``dL/dx`` of
        ``spec`` with weight ``w`` ``(C_out, C_in/groups, *k)`` and upstream gradient ``g``
        (``spec.output_shape``). Nothing raises for a valid spec."""
        return {}

    def benchmark_callables(self, op: str, spec: ConvSpec, x, w, g) -> dict:
        """Zero-argument callables timed by ``tconv bench`` for ``op`` (inputs converted once)."""
        return {}

    # -- convert --------------------------------------------------------------------------------

    def read(self, **args):
        """The :class:`~tconv.convert.Layer` this framework builds from ``args``."""
        raise ConvSpecError(f"{self.name} has no transposed-conv layer tconv reads")

    def write(self, spec: ConvSpec, options: dict) -> dict:
        """The ``read`` arguments of the layer closest to ``spec`` (the canonical spec of a
        transposed layer); ``options`` has ``transpose_kernel`` and ``consistent``."""
        raise ConvSpecError(f"{self.name} has no transposed-conv layer tconv writes")

    def from_flags(self, *, size, k, in_channels, out_channels, stride, padding, output_padding,
                   output_shape, dilation, groups, auto_pad, transpose_kernel, consistent,
                   batch):
        """The layer from ``tconv convert``'s words (see :func:`tconv.convert.from_flags`)."""
        raise ConvSpecError(f"{self.name} has no transposed-conv layer tconv reads")

    def code(self, layer, crop, bias: bool, runnable: bool = False
             ) -> tuple[list[str], list[str], list[str]]:
        """``(imports, setup, body)`` of the snippet (:func:`tconv.convert.code.render`):
        ``setup`` builds ``layer``, the ready object (``crop`` included; ``bias``: with the
        array ``bias``), from the array ``weight``; ``body`` is ``forward(x)``'s, returning a
        NumPy array."""
        raise ConvSpecError(f"{self.name} has no code for its layer")

    def unbatched(self, layer) -> dict:
        """``layer.kwargs`` with any batch size in them left out (``None``): the layer's
        arguments when the batch was not given."""
        return layer.kwargs

    def pad_code(self, widths) -> str:
        """A line adding zero cells ``widths`` (per axis of the output) to ``y``."""
        return f"y = np.pad(y, {[list(w) for w in widths]})"

    def bias_code(self, bias: str, shape) -> str:
        """A line adding the bias (the expression ``bias``) to ``y``, reshaped to ``shape``."""
        return f"y = y + {bias}.reshape({shape})"

    def cannot_run(self, layer) -> str | None:
        """Why this machine cannot run ``layer`` (a missing package, a CPU kernel's limit)."""
        return None if self.available() else f"{self.package} is not installed"

    def runner(self, layer) -> str:
        """What runs ``layer``'s code on this machine."""
        return layer.call

    def prepare(self) -> None:
        """Set the framework up (quietly) before tconv runs a snippet of it."""

    # -- convert: layer objects -----------------------------------------------------------------

    def reads_object(self, obj) -> bool:
        """Whether ``obj`` is a layer object of this framework (asked without importing it)."""
        return False

    def read_layer(self, obj, **args):
        """The :class:`~tconv.convert.objects.LayerRead` of the layer object ``obj``."""
        raise ConvSpecError(f"tconv reads no {self.title or self.name} layer objects")

    def reads_model(self, model) -> bool:
        """Whether ``model`` (an object or a path) is a model of this framework."""
        return False

    def find_layers(self, model, input_shape=None) -> list:
        """``[(name, LayerRead or the reason it cannot be read), ...]``: the transposed
        convolutions of ``model``, in order."""
        raise ConvSpecError(f"tconv reads no {self.title or self.name} models")

    def build_layer(self, conversion, w, b):
        """The :class:`~tconv.convert.objects.Built` target of ``conversion`` (its target is
        this framework's) from the source's weight ``w`` and bias ``b`` (or None): the code
        tconv prints for it, run, so that the object is what the printed code builds."""
        from ..convert.objects import built_from_code

        return built_from_code(conversion.target, conversion, w, b)


def is_file(model, *suffixes: str) -> bool:
    """Whether ``model`` is a path (a string or a Path) ending in one of ``suffixes``."""
    from pathlib import Path

    return isinstance(model, (str, Path)) and str(model).lower().endswith(suffixes)


def owner(obj, source: str | None, asks: str):
    """The framework ``source``, or the first converter whose method ``asks``
    (``"reads_object"``, ``"reads_model"``) says ``obj`` is its own; None if none does."""
    if source is not None:
        return get(source)
    for name in converters():
        framework = get(name)
        if getattr(framework, asks)(obj):
            return framework
    return None


def read_or_reason(read, *args, **kwargs):
    """``read(*args, **kwargs)``, or the ConvSpecError's message: one layer of a model that
    tconv cannot read does not stop the others."""
    try:
        return read(*args, **kwargs)
    except ConvSpecError as error:
        return str(error)


def module_of(obj) -> str:
    """The top-level package of ``obj``'s type (``"torch"``, ``"keras"``, ...)."""
    return type(obj).__module__.partition(".")[0]


@contextlib.contextmanager
def native_logs_silenced():
    """Send what native code writes to stderr (file descriptor 2) to nothing while the body
    runs: the log lines TensorFlow, XLA and absl print as they start, before any setting of
    theirs can stop them. Python's own warnings and tconv's messages are not affected outside
    the body; what matters of a framework's state is said on its rows instead
    (:meth:`Framework.describe`)."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


_DISCOVERED: list[bool] = []


def _discover() -> None:
    """Import every public module of this package once, so that their classes register
    (``_``-modules are helpers of the others)."""
    if not _DISCOVERED:
        _DISCOVERED.append(True)
        for info in pkgutil.iter_modules(__path__):
            if not info.name.startswith("_"):
                importlib.import_module(f"{__name__}.{info.name}")


def all_frameworks() -> list[Framework]:
    """Every registered framework, in table order."""
    _discover()
    return sorted((_instance(cls) for cls in Framework._classes.values()),
                  key=lambda f: (f.rank, f.name))


_INSTANCES: dict[type, Framework] = {}


def _instance(cls: type[Framework]) -> Framework:
    if cls not in _INSTANCES:
        _INSTANCES[cls] = cls()
    return _INSTANCES[cls]


def get(name: str) -> Framework:
    """The framework called ``name`` (or one of its aliases)."""
    for framework in all_frameworks():
        if name == framework.name or name in framework.aliases:
            return framework
    known = ", ".join(f.name for f in all_frameworks())
    raise ConvSpecError(f"framework {name!r} is not one of {known}")


def with_ways() -> list[str]:
    """The frameworks that compute input gradients (the rows of ``verify``)."""
    return [f.name for f in all_frameworks() if f.way_names(2)]


def converters() -> list[str]:
    """The frameworks whose transposed-conv layer ``tconv convert`` reads and writes."""
    return [f.name for f in all_frameworks() if f.flag_call]


def available(name: str) -> bool:
    """Whether framework ``name`` is installed."""
    return get(name).available()


def installed() -> list[str]:
    """The frameworks with ways whose package is installed."""
    return [name for name in with_ways() if available(name)]


def parse(names: str | None) -> list[str]:
    """``"torch,jax"`` / ``"all"`` / ``"none"`` / None (= installed) -> framework names."""
    if names is None or names == "installed":
        return installed()
    if names == "all":
        return with_ways()
    if names in ("", "none"):
        return []
    result = []
    for word in (n.strip() for n in names.split(",") if n.strip()):
        framework = get(word)
        if framework.name not in with_ways():
            raise ConvSpecError(f"framework {word!r} has no ways to compute an input gradient; "
                                f"one of {', '.join(with_ways())}")
        result.append(framework.name)
    return result
