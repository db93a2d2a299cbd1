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
from ..convert import code
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


def _layer(source, layer_input, in_channels, out_channels, kernel, stride, padding,
           output_padding, output_size, dilation, groups, auto_pad, transpose_kernel, consistent,
           batch, bias):
    """The source layer the flags describe (the JAX options go to the side that is JAX)."""
    for flag, value in (("--from", source), ("--layer-input", layer_input), ("--kernel", kernel)):
        if value is None:
            raise ConvSpecError(f"{flag} is required (see tconv convert --help)", flag)
    return convert.from_flags(
        source, input_size=flags.ints("--layer-input", layer_input),
        kernel=flags.per_dim("--kernel", kernel), in_channels=in_channels,
        out_channels=out_channels, stride=flags.per_dim("--stride", stride),
        padding=_padding(padding),
        output_padding=_optional("--layer-output-padding", output_padding),
        output_shape=_optional("--layer-output-size", output_size),
        dilation=flags.per_dim("--dilation", dilation), groups=groups, auto_pad=auto_pad,
        transpose_kernel=transpose_kernel and source in _JAX_LIKE,
        use_consistent_padding=consistent and source == "jax",
        batch=1 if batch is None else batch, bias=bias)


#: The spellings of the spec commands, where they mean the forward convolution: in convert they
#: would mean the other side, so they are refused with the name to use.
_FORWARD_WORDS = {
    "--input": "--layer-input (the transposed layer's input, spatial sizes)",
    "--out-channels": "--layer-out-channels (the transposed layer's output channels)",
    "--output-padding": "--layer-output-padding (the source layer's own output_padding)",
}


def _refuse_forward_words(given: dict) -> None:
    for flag, value in given.items():
        if value is not None:
            raise ConvSpecError(
                f"{flag} means the forward convolution in every tconv command; tconv convert "
                f"describes the transposed layer: use {_FORWARD_WORDS[flag]}", flag)


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


_LAYER = {      # the options that describe the transposed layer, in the source's own words
    "input": typer.Option(None, "--layer-input",
                          help="Spatial size of the transposed layer's input: 16, 8x8 or 4x8x8."),
    "in": typer.Option(1, "--layer-in-channels", "--in-channels",
                       help="Channels of the transposed layer's input."),
    "out": typer.Option(1, "--layer-out-channels", help="Channels of the transposed layer's "
                        "output."),
    "padding": typer.Option(None, "--padding", help="The source layer's padding in its own "
                            "words: same / valid (TF, Keras, JAX, Flax), ints (PyTorch; Flax), "
                            "low:high pairs per dim (JAX, Flax, TF 2-d explicit), or ONNX pads "
                            "begin...,end... (0,0,1,1). Default: the source's default."),
    "output_padding": typer.Option(None, "--layer-output-padding", help="The source layer's "
                                   "own output_padding (PyTorch, Keras, ONNX)."),
    "output_size": typer.Option(None, "--layer-output-size", "--output-shape", help="Spatial "
                                "size of the transposed layer's output: TF output_shape, ONNX "
                                "output_shape, PyTorch output_size (16x16)."),
}
_MODEL_INPUT = typer.Option(None, "--model-input", help="With MODEL: the model's input shape, "
                            "in its layout (1,100,1,1); needed for torch, optional for ONNX.")
_ZERO_DILATED = typer.Option(False, "--zero-dilated-kernel", help="Write a dilated layer with "
                             "dilation 1 and zeros between the kernel's taps: what TensorFlow's "
                             "CPU kernels run (tensorflow#69103); LiteRT always gets it.")


def command(
    model: Optional[str] = typer.Argument(
        None, metavar="MODEL", help="A model file: ONNX (.onnx), Keras (.keras) or a torch "
        "module saved whole (.pt, unpickled: only files you trust). Every transposed "
        "convolution in it is converted (and checked with --check); the rest is not."),
    source: Optional[str] = typer.Option(None, "--from", help=f"Source framework: {_CHOICES}."),
    target: Optional[str] = typer.Option(None, "--to", help=f"Target framework: {_CHOICES}."),
    layer_input: Optional[str] = _LAYER["input"], in_channels: int = _LAYER["in"],
    out_channels: int = _LAYER["out"],
    kernel: Optional[str] = typer.Option(None, "--kernel", help="Kernel size: 3 or 3x5."),
    stride: str = typer.Option("1", "--stride", help="Stride: one int or one per dim."),
    padding: Optional[str] = _LAYER["padding"],
    output_padding: Optional[str] = _LAYER["output_padding"],
    output_size: Optional[str] = _LAYER["output_size"],
    dilation: str = typer.Option("1", "--dilation", help="Dilation: one int or one per dim."),
    groups: int = typer.Option(1, "--groups", help="Groups (PyTorch, ONNX, JAX)."),
    auto_pad: Optional[str] = typer.Option(
        None, "--auto-pad", help="ONNX auto_pad: NOTSET, SAME_UPPER, SAME_LOWER or VALID."),
    bias: bool = typer.Option(True, "--bias/--no-bias", help="The layer adds a bias (the "
                              "default of PyTorch, Keras, Flax); it travels to the target."),
    batch: Optional[int] = typer.Option(None, "--batch", help="Batch size, if fixed; otherwise "
                                        "the shapes leave it open (JSON: null)."),
    transpose_kernel: bool = typer.Option(
        False, "--transpose-kernel", help="JAX/Flax transpose_kernel=True, on the JAX side."),
    consistent_padding: bool = typer.Option(
        False, "--consistent-padding", help="lax.conv_transpose(use_consistent_padding=True)."),
    zero_dilated_kernel: bool = _ZERO_DILATED, model_input: Optional[str] = _MODEL_INPUT,
    dtype: str = typer.Option("float32", "--dtype", help="dtype of the printed program's data "
                              "(float32 or float64)."),
    check: bool = typer.Option(
        False, "--check", help="Run both sides with the installed frameworks on random data and "
                               "print the max difference."),
    seed: int = typer.Option(0, "--seed", help="Seed of the --check data."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    forward_input: Optional[str] = typer.Option(None, "--input", hidden=True),
    forward_out_channels: Optional[str] = typer.Option(None, "--out-channels", hidden=True),
    forward_output_padding: Optional[str] = typer.Option(None, "--output-padding", hidden=True),
) -> None:
    """Write a transposed-convolution layer of one framework in another, exactly.

    Prints the target layer as a program that runs as printed (the weight transform, the bias,
    the crop, the layouts put back) and its output shape. Where the target cannot express the
    layer alone it adds the smallest exact crop (or zero padding), never a shifted result;
    where no target layer exists it says why (exit 2). The data layout of each side is stated
    (PyTorch and ONNX NCHW, the others NHWC). The --layer-* flags describe the transposed layer
    (its input is the forward convolution's output); --input, --out-channels and
    --output-padding mean the forward convolution, as in every other command, and are refused
    here. With MODEL, every transposed convolution of the model is converted.
    Exit code 0 (and with --check: both sides agree), 1 when the check fails or cannot run, 2 on
    bad input (a --check too large for the memory limit included).

    Examples:

      tconv convert --from tf --to torch --layer-input 8x8 --kernel 3 --stride 2 --padding same
      --check

      tconv convert generator.keras --to torch --check
    """
    with user_errors(as_json):
        _refuse_forward_words({"--input": forward_input, "--out-channels": forward_out_channels,
                               "--output-padding": forward_output_padding})
        if dtype not in ("float32", "float64"):
            raise ConvSpecError(f"--dtype must be float32 or float64, got {dtype!r}", "--dtype")
        _check_jax_options(source, target, transpose_kernel, consistent_padding)
        if target is None:
            raise ConvSpecError(f"--to is required: one of {_CHOICES}", "--to")
        options = dict(transpose_kernel=transpose_kernel and target in _JAX_LIKE,
                       use_consistent_padding=consistent_padding and target == "jax",
                       zero_dilated_kernel=zero_dilated_kernel)
        if model is not None:
            shape = None if model_input is None else flags.ints("--model-input", model_input)
            _quiet_xla()
            result = convert.model(model, target, source=source, input_shape=shape,
                                   check=check, seed=seed, **options)
        else:
            layer = _layer(source, layer_input, in_channels, out_channels, kernel, stride,
                           padding, output_padding, output_size, dilation, groups, auto_pad,
                           transpose_kernel, consistent_padding, batch, bias)
            result = convert.convert(layer, target, **options)
        outcome = None
        if check and model is None:       # a layer too large to run is refused here
            _quiet_xla()
            outcome = convert.check(result, seed=seed)
    if model is not None:
        _print_model(result, as_json)
        raise typer.Exit(0 if result.passed else 1)
    if as_json:
        data = result.to_dict(batch=batch is not None)
        if outcome is not None:
            data["check"] = outcome.to_dict()
        print(json.dumps(data, indent=2))
    else:
        _print(result, outcome, dtype, 2 if batch is None else batch)
    raise typer.Exit(0 if outcome is None or outcome.passed else 1)


def _print_model(result, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result.to_dict(), indent=2))
        return
    print(f"tconv convert: {len(result.layers)} transposed convolutions of the {result.source} "
          f"model to {result.to} ({result.note})")
    for name, r in result.layers:
        print()
        if isinstance(r, str):
            print(f"{name}: NO {result.to} LAYER: {r}")
            continue
        print(f"{name}: {r.describe()}")
        for note in list(r.conversion.notes()) + list(r.notes):
            print(f"  {note}")
    print()
    print("all converted" + (" and equal" if result.passed else ": NOT all equal or converted"))


def _print(result: convert.Conversion, outcome, dtype: str, batch: int) -> None:
    """The conversion as comments, then the program: the whole output runs as Python."""
    source, target = result.source, result.target
    verdict = "exact" if result.exact else "exact with a crop"
    lines = [f"tconv convert: {source.call} -> {target.call} ({verdict})"]
    for name, layer in (("source", source), ("target", target)):
        lines += [f"{name:8} {layer.describe()}",
                  f"{'':8} input {layer.input_shape} {layer.data_format}, weight "
                  f"{layer.weight_shape} = {layer.weight_format}"
                  + (", bias (C_out,)" if source.bias else "")]
    transform = result.weight_transform
    lines += [f"tconv    {source.tconv_call()}",
              f"weight   permute {list(transform.permute)}, flip {list(transform.flip)}"
              + (f", swap channels in {transform.swap_groups} groups"
                 if transform.swap_groups > 1 else "")
              + (f", dilated by zeros {list(transform.dilate)}" if transform.dilate else ""),
              f"crop     {[list(c) for c in result.crop]} on the axes {result.crop_axes} of the "
              f"target's output (cells off the start and end; negative: zeros added)",
              *[f"{'':8} {note}" for note in result.notes()],
              f"output   {result.output_shape} {target.layout.output_name}"]
    print("\n".join(f"# {line}" for line in lines))
    print()
    print(code.script(result, dtype, batch), end="")
    if outcome is None:
        return
    if outcome.reason:
        print(f"# check    NOT RUN: {outcome.reason}")
        return
    print(f"# check    {outcome.source_way} vs {outcome.target_way} on the same random float32 "
          f"data: max |difference| {outcome.max_diff:.3g}; against tconv's float64 result "
          f"{outcome.source_error:.3g} and {outcome.target_error:.3g}, bound "
          f"{outcome.bound:.3g}: {'PASS' if outcome.passed else 'FAIL'}")
