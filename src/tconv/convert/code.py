"""The code tconv prints for a layer or a conversion, and the JSON of a spec.

The snippet of a layer: imports, ``weight`` from the source's ``w`` (the weight transform), the
layer, and ``forward(x)`` with the crop. Each framework writes its own part
(:meth:`tconv.frameworks.Framework.code`, ``pad_code``); this module assembles them.
"""
from __future__ import annotations

import numpy as np

from ..spec import ConvSpec
from .layer import Layer
from .layout import WeightTransform
from .window import Pair, windows


class Code(str):
    """Code text that :func:`call_text` writes as it is, not as a string literal."""

    def __repr__(self) -> str:
        return str(self)


def call_text(func: str, args: list[str], kwargs: dict, indent: str = "",
              width: int | None = 96) -> str:
    """``func(arg, ..., key=value!r, ...)`` on one line, or one argument per line when longer
    than ``width`` (None: never)."""
    parts = list(args) + [f"{k}={v!r}" for k, v in kwargs.items()]
    line = f"{func}({', '.join(parts)})"
    if width is None or len(indent) + len(line) <= width:
        return line
    return f"{func}(\n" + "".join(f"{indent}    {p},\n" for p in parts) + f"{indent})"


def render(layer: Layer, transform: WeightTransform, conversion=None,
           runnable: bool = False) -> str:
    """The snippet for ``layer`` (the target of ``conversion`` if given, whose crop it applies).
    ``runnable`` lets a framework write what runs on this machine (Flax as the lax call it makes
    when Flax is missing)."""
    from ..frameworks import get

    framework = get(layer.framework)
    nd = layer.spec.ndim
    crop = conversion.crop if conversion is not None else ((0, 0),) * nd
    imports, setup, call = framework.code(layer, crop, runnable)
    out_shape = conversion.output_shape if conversion is not None else layer.output_shape
    lines = []
    if conversion is not None:
        source = conversion.source
        if source.data_format != layer.data_format:
            lines.append(f"# data: {source.data_format} -> {layer.data_format}: x = np.transpose("
                         f"x_{source.framework}, {conversion.input_permute})")
    lines += ["import numpy as np", *imports, ""]
    if conversion is not None:
        lines.append(f"# weight: {get(conversion.source.framework).title} "
                     f"{conversion.source.weight_format} -> {framework.title} "
                     f"{layer.weight_format}")
    lines += transform.code("w", "weight") + setup + [
        "", "", "def forward(x):",
        f'    """x: {layer.data_format} {_shape_text(layer.input_shape)} -> '
        f'{_shape_text(out_shape)}."""',
        f"    y = {call}",
        *[f"    {line}" for line in crop_lines(layer, crop)],
        "    return y"]
    return "\n".join(lines) + "\n"


def _shape_text(shape) -> str:
    return "(N, " + ", ".join(str(v) for v in shape[1:]) + ")"


def crop_lines(layer: Layer, crop) -> list[str]:
    """Lines applying ``crop`` to ``y`` (zeros added first, then the slice), in the layer's
    output layout; nothing for a framework that puts the crop in its own graph."""
    from ..frameworks import get

    framework = get(layer.framework)
    if framework.crops_in_graph or all(c == (0, 0) for c in crop):
        return []
    out = layer.layout.output
    pads = [(max(-lo, 0), max(-hi, 0)) for lo, hi in crop]
    cuts = [(max(lo, 0), max(hi, 0)) for lo, hi in crop]
    lines = [f"# crop {[list(c) for c in crop]}: cells off the start and end of each spatial "
             f"dim (negative: zeros added)"]
    if any(any(p) for p in pads):
        lines.append(framework.pad_code([pads[p - 2] if p >= 2 else (0, 0) for p in out]))
    if any(any(c) for c in cuts):
        index = [_slice_text(*cuts[p - 2]) if p >= 2 else ":" for p in out]
        lines.append(f"y = y[{', '.join(index)}]")
    return lines


def _slice_text(low: int, high: int) -> str:
    return f"{low or ''}:{-high if high else ''}"


def crop_words(crop: Pair) -> str:
    words = []
    for amount, side in zip(crop, ("start", "end")):
        if amount > 0:
            words.append(f"crop {amount} at the {side}")
        elif amount < 0:
            words.append(f"add {-amount} zero cells at the {side}")
    return ", ".join(words)


def jsonable(value):
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    return value


def spec_dict(spec: ConvSpec) -> dict:
    """The canonical description in transposed terms (the layer's input is ``y``)."""
    return {"input_shape": list(spec.output_shape), "weight_shape": list(spec.weight_shape),
            "stride": list(spec.stride), "padding": [list(p) for p in spec.padding],
            "output_padding": list(spec.output_padding), "dilation": list(spec.dilation),
            "groups": spec.groups, "output_shape": list(spec.input_shape),
            "windows": [list(w) for w in windows(spec)],
            "call": tconv_call(spec)}


def tconv_call(spec: ConvSpec) -> str:
    return (f"tconv.conv_transpose(y, w, stride={spec.stride}, padding={spec.padding}, "
            f"output_padding={spec.output_padding}, dilation={spec.dilation}, "
            f"groups={spec.groups})")
