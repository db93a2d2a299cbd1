"""``tconv convert``: a transposed-conv layer of one framework written in another, exactly.

The conversion itself is :mod:`tconv.convert`; this module parses the flags, prints the result
(text or ``--json``) and runs ``--check``.
"""
from __future__ import annotations

import json
import os
from typing import Optional

import typer

from .. import convert
from .. import flags
from ..spec import ConvSpecError
from .common import user_errors

_JAX_LIKE = ("jax", "flax")
_CHOICES = ", ".join(convert.FRAMEWORKS) + " (tf: tensorflow)"


def _padding(text: str | None):
    """same / valid / circular as words, else ints, per-dim ints, low:high pairs or ONNX pads."""
    if text is None or text.replace("_", "").isalpha():
        return text
    return flags.padding(text)


def _optional(flag: str, text: str | None):
    return None if text is None else flags.per_dim(flag, text)


def _layer(source, input, in_channels, out_channels, kernel, stride, padding, output_padding,
           output_shape, dilation, groups, auto_pad, transpose_kernel, consistent):
    """The source layer the flags describe (the JAX options go to the side that is JAX)."""
    for flag, value in (("--from", source), ("--input", input), ("--kernel", kernel)):
        if value is None:
            raise ConvSpecError(f"{flag} is required (see tconv convert --help)")
    return convert.from_flags(
        source, input_size=flags.ints("--input", input), kernel=flags.per_dim("--kernel", kernel),
        in_channels=in_channels, out_channels=out_channels,
        stride=flags.per_dim("--stride", stride), padding=_padding(padding),
        output_padding=_optional("--output-padding", output_padding),
        output_shape=_optional("--output-shape", output_shape),
        dilation=flags.per_dim("--dilation", dilation), groups=groups, auto_pad=auto_pad,
        transpose_kernel=transpose_kernel and source in _JAX_LIKE,
        use_consistent_padding=consistent and source == "jax")


def _check_jax_options(source, target, transpose_kernel, consistent) -> None:
    if transpose_kernel and source not in _JAX_LIKE and target not in _JAX_LIKE:
        raise ConvSpecError("--transpose-kernel is an option of JAX and Flax; neither --from "
                            f"{source} nor --to {target} is one")
    if consistent and "jax" not in (source, target):
        raise ConvSpecError("--consistent-padding is lax.conv_transpose's use_consistent_padding;"
                            f" neither --from {source} nor --to {target} is jax")


def _quiet_xla() -> None:
    """Work around an XLA CPU crash (an abort in the algebraic simplifier for some lhs-dilated
    convolutions, jaxlib 0.10.2; see docs/convert.md) in this process only: the check is
    tiny, the pass is not needed. Only before JAX has started, when the flag still counts."""
    from ..frameworks.jax import disable_crashing_pass

    disable_crashing_pass()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def command(
    source: Optional[str] = typer.Option(None, "--from", help=f"Source framework: {_CHOICES}."),
    target: Optional[str] = typer.Option(None, "--to", help=f"Target framework: {_CHOICES}."),
    input: Optional[str] = typer.Option(
        None, "--input", help="Spatial size of the layer's input: 16, 8x8 or 4x8x8."),
    in_channels: int = typer.Option(1, "--in-channels", help="Channels of the layer's input."),
    out_channels: int = typer.Option(1, "--out-channels", help="Channels of its output."),
    kernel: Optional[str] = typer.Option(None, "--kernel", help="Kernel size: 3 or 3x5."),
    stride: str = typer.Option("1", "--stride", help="Stride: one int or one per dim."),
    padding: Optional[str] = typer.Option(
        None, "--padding", help="In the source's own words: same / valid (TF, Keras, JAX, Flax), "
        "ints (PyTorch; Flax), low:high pairs per dim (JAX, Flax, TF 2-d explicit), or ONNX pads "
        "begin...,end... (0,0,1,1). Default: the source's default."),
    output_padding: Optional[str] = typer.Option(
        None, "--output-padding", help="PyTorch, Keras, ONNX output_padding."),
    output_shape: Optional[str] = typer.Option(
        None, "--output-shape", help="Spatial output size: TF output_shape, ONNX output_shape, "
        "PyTorch output_size (e.g. 16x16)."),
    dilation: str = typer.Option("1", "--dilation", help="Dilation: one int or one per dim."),
    groups: int = typer.Option(1, "--groups", help="Groups (PyTorch, ONNX, JAX)."),
    auto_pad: Optional[str] = typer.Option(
        None, "--auto-pad", help="ONNX auto_pad: NOTSET, SAME_UPPER, SAME_LOWER or VALID."),
    transpose_kernel: bool = typer.Option(
        False, "--transpose-kernel", help="JAX/Flax transpose_kernel=True, on the JAX side."),
    consistent_padding: bool = typer.Option(
        False, "--consistent-padding", help="lax.conv_transpose(use_consistent_padding=True)."),
    check: bool = typer.Option(
        False, "--check", help="Run both sides with the installed frameworks on random data and "
                               "print the max difference."),
    seed: int = typer.Option(0, "--seed", help="Seed of the --check data."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Write a transposed-convolution layer of one framework in another, exactly.

    Prints the target layer's code (construction, weight transform, crop) and its output shape.
    Where the target cannot express the layer alone it adds the smallest exact crop (or zero
    padding), never a shifted result; where no target layer exists it says why (exit 2).
    The data layout of each side is stated (PyTorch and ONNX NCHW, the others NHWC).
    Exit code 0 (and with --check: both sides agree), 1 when the check fails or cannot run, 2 on
    bad input.

    Example: tconv convert --from tf --to torch --input 8x8 --kernel 3 --stride 2 --padding same
    --check
    """
    with user_errors(as_json):
        _check_jax_options(source, target, transpose_kernel, consistent_padding)
        layer = _layer(source, input, in_channels, out_channels, kernel, stride, padding,
                       output_padding, output_shape, dilation, groups, auto_pad, transpose_kernel,
                       consistent_padding)
        if target is None:
            raise ConvSpecError(f"--to is required: one of {_CHOICES}")
        result = convert.convert(layer, target,
                                 transpose_kernel=transpose_kernel and target in _JAX_LIKE,
                                 use_consistent_padding=consistent_padding
                                 and target == "jax")
    outcome = None
    if check:
        _quiet_xla()
        outcome = convert.check(result, seed=seed)
    if as_json:
        data = result.to_dict()
        if outcome is not None:
            data["check"] = outcome.to_dict()
        print(json.dumps(data, indent=2))
    else:
        _print(result, outcome)
    raise typer.Exit(0 if outcome is None or outcome.passed else 1)


def _print(result: convert.Conversion, outcome) -> None:
    source, target = result.source, result.target
    verdict = "exact" if result.exact else "exact with a crop"
    print(f"tconv convert: {source.call} -> {target.call} ({verdict})")
    for name, layer in (("source", source), ("target", target)):
        print(f"{name:8} {layer.describe()}")
        print(f"{'':8} input {layer.input_shape} {layer.data_format}, weight "
              f"{layer.weight_shape} = {layer.weight_format}")
    print(f"tconv    {source.tconv_call()}")
    transform = result.weight_transform
    print(f"weight   permute {list(transform.permute)}, flip {list(transform.flip)}"
          + (f", swap channels in {transform.swap_groups} groups" if transform.swap_groups > 1
             else ""))
    print(f"crop     {[list(c) for c in result.crop]} (cells off the start and end of each "
          f"spatial dim; negative: zeros added)")
    for note in result.notes():
        print(f"{'':8} {note}")
    print(f"output   {result.output_shape} {target.data_format}")
    print()
    print(result.code())
    if outcome is None:
        return
    if outcome.reason:
        print(f"check    NOT RUN: {outcome.reason}")
        return
    print(f"check    {outcome.source_way} vs {outcome.target_way} on the same random float32 "
          f"data: max |difference| {outcome.max_diff:.3g}; against tconv's float64 result "
          f"{outcome.source_error:.3g} and {outcome.target_error:.3g}, bound "
          f"{outcome.bound:.3g}: {'PASS' if outcome.passed else 'FAIL'}")
