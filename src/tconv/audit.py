"""The audit of a model's transposed convolutions: what each one is in every framework's words,
which output sizes collide, where it overlaps unevenly, and which runtimes' known bugs it meets.

For each transposed convolution of the model (:func:`tconv.convert.models.find`):

* **words**: the layer each framework writes for it (:func:`tconv.convert.convert`), with the
  crop it needs, or why no layer of that framework expresses it;
* **sizes**: per spatial dim, every output size whose forward convolution has the layer's input
  size (:meth:`ConvSpec.input_sizes`): a strided layer cannot tell them apart, so
  ``output_padding`` (or an ``output_size``) picks one, and a port that drops it picks another;
* **overlap**: how many kernel taps land on each output cell away from the edges
  (:func:`tconv.explain.story.overlap`): an uneven pattern is the checkerboard risk;
* **known bugs**: the frameworks' own verdicts on the layer's spec, run on random data: every
  documented difference (:class:`~tconv.frameworks.KnownDifference`) and every way that
  cannot express it because of a reported bug (a reason naming an upstream issue).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from .convert.objects import LayerRead
from .spec import ConvSpecError

_ISSUE = re.compile(r"[\w.-]+#\d+")


@dataclass(frozen=True)
class LayerAudit:
    """The audit of one transposed convolution (see the module docstring)."""

    name: str
    call: str
    describe: str
    tconv: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    words: dict = field(default_factory=dict)
    sizes: list = field(default_factory=list)
    overlap: list = field(default_factory=list)
    bugs: list = field(default_factory=list)

    @property
    def collides(self) -> bool:
        return any(len(d["sizes"]) > 1 for d in self.sizes)

    @property
    def uneven(self) -> bool:
        return any(not d["even"] for d in self.overlap)

    def to_dict(self) -> dict:
        return {"name": self.name, "call": self.call, "layer": self.describe,
                "tconv": self.tconv, "input_shape": list(self.input_shape),
                "output_shape": list(self.output_shape), "frameworks": self.words,
                "sizes": self.sizes, "collides": self.collides, "overlap": self.overlap,
                "uneven_overlap": self.uneven, "known_bugs": self.bugs}


def _words(read: LayerRead) -> dict:
    from . import convert

    result = {}
    for name in convert.FRAMEWORKS:
        try:
            conversion = convert.convert(read.layer, name)
        except ConvSpecError as error:
            result[name] = {"layer": None, "refused": str(error)}
            continue
        result[name] = {"layer": conversion.target.describe(), "exact": conversion.exact,
                        "crop": [list(c) for c in conversion.crop]}
    return result


def _sizes(read: LayerRead) -> list:
    spec = read.layer.spec
    return [{"dim": i, "input": o, "sizes": [n for n, _ in choices], "this": n_this}
            for i, (o, choices, n_this) in enumerate(zip(spec.output_size, spec.input_sizes(),
                                                         spec.input_size))]


def _overlap(read: LayerRead) -> list:
    from .explain import story

    spec = read.layer.spec
    ov = story.overlap(spec.kernel_size, spec.stride, spec.dilation, dims=spec.ndim, size=2)
    return [{"dim": i, "kernel": k, "stride": s, "pattern": list(p), "even": len(set(p)) == 1}
            for i, (k, s, p) in enumerate(zip(spec.kernel_size, spec.stride, ov.patterns))]


def _bugs(read: LayerRead, frameworks: list[str], seed: int) -> list:
    """The known differences and bug-caused refusals of every installed framework's ways."""
    from .frameworks import KnownDifference, NotExpressible, get

    spec = read.layer.spec
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(spec.weight_shape).astype(np.float32)
    g = rng.standard_normal(spec.output_shape).astype(np.float32)
    found = []
    for name in frameworks:
        for way, result in get(name).input_grad_ways(spec, w, g).items():
            if isinstance(result, KnownDifference):
                found.append({"framework": name, "way": way, "kind": "known difference",
                              "reason": result.reason})
            elif isinstance(result, NotExpressible) and _ISSUE.search(result.reason):
                found.append({"framework": name, "way": way, "kind": "cannot run",
                              "reason": result.reason})
    return found


def audit(model, *, source: str | None = None, input_shape=None, frameworks=None,
          seed: int = 0) -> list[LayerAudit]:
    """The audit of every transposed convolution of ``model`` (a path or an object, as
    :func:`tconv.convert.model` takes). ``frameworks``: whose ways to run for the known bugs
    (default: the installed ones)."""
    from .convert.models import find
    from .frameworks import installed

    _, found = find(model, source=source, input_shape=input_shape)
    names = installed() if frameworks is None else list(frameworks)
    result = []
    for name, read in found:
        if isinstance(read, str):          # a layer tconv could not read
            result.append(LayerAudit(name, "", f"not read: {read}", "", (), ()))
            continue
        layer = read.layer
        result.append(LayerAudit(name, layer.call, layer.describe(), layer.tconv_call(),
                                 layer.input_shape, layer.output_shape, _words(read),
                                 _sizes(read), _overlap(read), _bugs(read, names, seed)))
    return result
