"""The code tconv prints for a layer or a conversion, and the JSON of a spec.

The snippet of a layer: imports, ``weight`` from the source's ``w`` (the weight transform) and
``bias`` from its ``b``, the ready ``layer`` (crop included) and ``forward(x)``. Each framework
writes its own part (:meth:`tconv.frameworks.Framework.code`, ``pad_code``, ``bias_code``);
this module assembles them, and :func:`script` makes the whole a program that runs as printed.
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

    It takes the source's weight ``w`` (and bias ``b`` when the source has one), defines
    ``weight`` (the weight transform) and ``bias``, builds ``layer`` -- the ready object of the
    framework, crop included -- and defines ``forward(x)``: ``x`` in the layer's layout, the
    result a NumPy array in its output layout. ``runnable`` lets a framework write what runs on
    this machine (Flax as the lax call it makes when Flax is missing)."""
    from ..frameworks import get

    framework = get(layer.framework)
    nd = layer.spec.ndim
    crop = conversion.crop if conversion is not None else ((0, 0),) * nd
    bias = conversion.source.bias if conversion is not None else layer.bias
    imports, setup, body = framework.code(layer, crop, bias, runnable)
    out_shape = conversion.output_shape if conversion is not None else layer.output_shape
    lines = ["import numpy as np", *imports, ""]
    if conversion is not None:
        lines.append(f"# weight: {get(conversion.source.framework).title} "
                     f"{conversion.source.weight_format} -> {framework.title} "
                     f"{layer.weight_format}")
    lines += transform.code("w", "weight")
    if bias:
        lines.append("bias = np.ascontiguousarray(b)       # (C_out,): added to every output cell")
    lines += setup + [
        "", "", "def forward(x):",
        f'    """x: {layer.data_format} {_shape_text(layer.input_shape)} -> '
        f'{layer.layout.output_name} {_shape_text(out_shape)}, a NumPy array."""',
        *[f"    {line}" for line in body]]
    return "\n".join(lines) + "\n"


def _shape_text(shape) -> str:
    return "(N, " + ", ".join(str(v) for v in shape[1:]) + ")"


def has_pads(crop) -> bool:
    """Whether ``crop`` adds zero cells somewhere (then the bias goes after them)."""
    return any(lo < 0 or hi < 0 for lo, hi in crop)


def crop_widths(layer: Layer, crop) -> tuple[list[Pair] | None, list[Pair] | None]:
    """``(pads, cuts)`` per axis of the layer's output: the zero cells to add and the cells to
    remove at each end (None where there are none)."""
    out = layer.layout.output
    pads = [(max(-crop[p - 2][0], 0), max(-crop[p - 2][1], 0)) if p >= 2 else (0, 0)
            for p in out]
    cuts = [(max(crop[p - 2][0], 0), max(crop[p - 2][1], 0)) if p >= 2 else (0, 0)
            for p in out]
    return (pads if any(any(w) for w in pads) else None,
            cuts if any(any(c) for c in cuts) else None)


def crop_axes(layer: Layer) -> list[int]:
    """The axes of the layer's output that the crop's entries apply to, in order."""
    return [layer.layout.output.index(2 + i) for i in range(layer.spec.ndim)]


def bias_shape(layer: Layer) -> tuple[int, ...]:
    """The bias reshaped to broadcast over the layer's output: -1 at the channel axis."""
    return tuple(-1 if p == 1 else 1 for p in layer.layout.output)


def crop_lines(layer: Layer, crop, bias: str | None = None) -> list[str]:
    """Lines applying ``crop`` to ``y`` (zeros added first, then the slice) in the layer's output
    layout, then adding ``bias`` (an expression) when given."""
    from ..frameworks import get

    framework = get(layer.framework)
    pads, cuts = crop_widths(layer, crop)
    lines = []
    if pads or cuts:
        lines.append(f"# crop {[list(c) for c in crop]}: cells off the start and end of each "
                     f"spatial dim (negative: zeros added)")
    if pads:
        lines.append(framework.pad_code(pads))
    if cuts:
        lines.append(f"y = y[{', '.join(_slice_text(*c) if any(c) else ':' for c in cuts)}]")
    if bias is not None:
        lines.append(framework.bias_code(bias, bias_shape(layer)))
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


def spec_dict(spec: ConvSpec, batch: bool = True) -> dict:
    """The canonical description in transposed terms (the layer's input is ``y``); ``batch``
    False: the batch size is ``None`` (not given)."""
    n = [spec.batch if batch else None]
    return {"input_shape": n + list(spec.output_shape[1:]),
            "weight_shape": list(spec.weight_shape),
            "stride": list(spec.stride), "padding": [list(p) for p in spec.padding],
            "output_padding": list(spec.output_padding), "dilation": list(spec.dilation),
            "groups": spec.groups, "output_shape": n + list(spec.input_shape[1:]),
            "windows": [list(w) for w in windows(spec)],
            "call": tconv_call(spec)}


def tconv_call(spec: ConvSpec) -> str:
    return (f"tconv.conv_transpose(y, w, stride={spec.stride}, padding={spec.padding}, "
            f"output_padding={spec.output_padding}, dilation={spec.dilation}, "
            f"groups={spec.groups})")


def script(conversion, dtype: str = "float32", batch: int = 2) -> str:
    """A program that runs as printed: the source's weight ``w`` and bias ``b`` (random here, in
    the source's layout: load yours instead), the target layer (:func:`render`), and a run on
    random data in the source's layout whose result is put back in the source's layout."""
    from ..frameworks import get

    source, target = conversion.source, conversion.target
    np_dtype = f"np.{np.dtype(dtype).name}"
    lines = [f"# {source.call} as {target.call}: runs as printed (tconv convert)",
             "import numpy as np", "", "rng = np.random.default_rng(0)",
             f"# the {get(source.framework).title} layer's weight {source.weight_format}"
             + (" and bias (C_out,)" if source.bias else "") + ": load yours here",
             f"w = rng.standard_normal({tuple(source.weight_shape)}).astype({np_dtype})"]
    if source.bias:
        lines.append(f"b = rng.standard_normal({source.spec.in_channels}).astype({np_dtype})")
    if np.dtype(dtype) == np.float64 and target.framework in ("jax", "flax"):
        lines += ["import jax", 'jax.config.update("jax_enable_x64", True)   # float64 in JAX']
    lines += ["", render(target, conversion.weight_transform, conversion).rstrip("\n"), ""]
    shape = (batch, *source.input_shape[1:])
    lines.append(f"x = rng.standard_normal({shape}).astype({np_dtype})   # the source's input, "
                 f"{source.data_format}")
    into, back = conversion.input_permute, conversion.output_permute
    if into == tuple(range(len(into))):
        lines.append("y = forward(x)")
    else:
        lines.append(f"y = forward(np.transpose(x, {into}))   # {source.data_format} -> "
                     f"{target.data_format}")
    if back != tuple(range(len(back))):
        lines.append(f"y = np.transpose(y, {back})   # {target.layout.output_name} -> "
                     f"{source.layout.output_name}, the source's layout")
    lines.append("print(y.shape, y.dtype)")
    return "\n".join(lines) + "\n"
