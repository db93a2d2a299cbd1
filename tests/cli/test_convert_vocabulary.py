"""`tconv convert` as a user meets it: its output runs as printed (in a fresh Python, float64
kept, the source's layout restored), its flags say which side they describe, its JSON leaves the
batch open and names the crop's axes, and every command's --help shows an example."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from oracle import assert_exact
from tconv import convert
from tconv.cli.app import app
from tconv.convert.layout import Layout, WeightTransform, inverse

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def tconv(*args):
    result = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})
    return result.exit_code, result.stdout, result.stderr


#: (source flags, target): each source's own layout and words, targets of every layout
PORTS = [
    (dict(source="keras", layer_input=(5, 6), kernel=3, stride=2, padding="same",
          in_channels=3, out_channels=2), "torch"),           # NHWC -> NCHW, crop
    (dict(source="torch", layer_input=(5, 6), kernel=3, stride=2, padding=1,
          output_padding=1, in_channels=3, out_channels=2), "keras"),   # NCHW -> NHWC, crop
    (dict(source="tf", layer_input=(7,), kernel=4, stride=2, padding="valid",
          in_channels=2, out_channels=3), "onnx"),
    (dict(source="onnx", layer_input=(4, 4), kernel=3, stride=2, padding=(0, 0, 1, 1),
          in_channels=2, out_channels=2), "flax"),
    (dict(source="torch", layer_input=(4,), kernel=3, stride=1, dilation=3, output_padding=2,
          in_channels=1, out_channels=2), "jax"),             # zeros past the full result
]


def _flags(words: dict) -> list:
    names = {"source": "--from", "layer_input": "--layer-input", "kernel": "--kernel",
             "stride": "--stride", "padding": "--padding", "dilation": "--dilation",
             "output_padding": "--layer-output-padding", "in_channels": "--layer-in-channels",
             "out_channels": "--layer-out-channels"}
    flags = []
    for key, value in words.items():
        text = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
        flags += [names[key], text]
    return flags


def _layer(words: dict):
    return convert.from_flags(
        words["source"], input_size=words["layer_input"], kernel=words["kernel"],
        stride=words["stride"], padding=words.get("padding"),
        output_padding=words.get("output_padding"), dilation=words.get("dilation", 1),
        in_channels=words["in_channels"], out_channels=words["out_channels"], bias=True)


@pytest.mark.parametrize("words, to", PORTS, ids=[f"{w['source']}-{t}" for w, t in PORTS])
def test_the_printed_program_runs_as_printed_in_float64(words, to, tmp_path):
    """The whole output of `tconv convert` is a Python program: run in a fresh interpreter it
    draws w, b and x (float64, the source's layouts), runs the target and puts the result back
    in the source's layout; that equals tconv's exact transposed convolution plus the bias."""
    code, out, _ = tconv("convert", "--to", to, "--dtype", "float64", *_flags(words))
    assert code == 0, out
    program = tmp_path / "port.py"
    program.write_text(out + f"\nnp.save({str(tmp_path / 'y.npy')!r}, y)\n")
    proc = subprocess.run([sys.executable, str(program)], capture_output=True, text=True,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = np.load(tmp_path / "y.npy")
    assert got.dtype == np.float64

    layer = _layer(words)
    spec = layer.spec
    rng = np.random.default_rng(0)                  # the program's draws, in its order
    w = rng.standard_normal(layer.weight_shape)
    b = rng.standard_normal(spec.in_channels)
    x = rng.standard_normal((2, *layer.input_shape[1:]))
    y = np.transpose(x, inverse(layer.layout.data))
    w_plain = WeightTransform.between(layer.layout, Layout.plain(spec.ndim),
                                      spec.groups).apply(w)
    spec = type(spec).transpose(y.shape, w_plain.shape, stride=spec.stride, padding=spec.padding,
                                output_padding=spec.output_padding, dilation=spec.dilation,
                                groups=spec.groups)
    got = np.transpose(got, inverse(layer.layout.output))
    assert got.shape == spec.input_shape
    unbiased = got - b.reshape((1, -1) + (1,) * spec.ndim)
    # onnxruntime computes in float32: its bound; the others in float64, well inside it
    assert_exact("conv_transpose", y, w_plain, spec, unbiased, dtype=np.float32,
                 label=f"{words['source']} -> {to}")
    if to not in ("onnx", "litert"):
        assert np.abs(unbiased - _float64(y, w_plain, spec)).max() < 1e-9


def _float64(y, w, spec):
    import tconv
    return tconv.conv_transpose(y, w, stride=spec.stride, padding=spec.padding,
                                output_padding=spec.output_padding, dilation=spec.dilation,
                                groups=spec.groups)


@pytest.mark.parametrize("flag, instead", [
    ("--input", "--layer-input"), ("--out-channels", "--layer-out-channels"),
    ("--output-padding", "--layer-output-padding")])
def test_forward_spellings_in_convert_name_the_layer_flag(flag, instead):
    """--input, --out-channels and --output-padding mean the forward convolution in every
    command; convert describes the transposed layer, so it refuses them and names its own."""
    proc = subprocess.run([sys.executable, "-m", "tconv.cli", "convert", "--from", "torch",
                           "--to", "onnx", "--layer-input", "8", "--kernel", "3", flag, "2"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1
    assert f"{flag} means the forward convolution" in proc.stderr and instead in proc.stderr


def test_the_old_spelling_of_the_layer_channels_still_works():
    code, new, _ = tconv("convert", "--from", "torch", "--to", "onnx", "--layer-input", "8",
                         "--kernel", "3", "--layer-in-channels", "4", "--json")
    code_old, old, _ = tconv("convert", "--from", "torch", "--to", "onnx", "--layer-input",
                             "8", "--kernel", "3", "--in-channels", "4", "--json")
    assert code == code_old == 0 and json.loads(new) == json.loads(old)
    assert json.loads(new)["input_shape"] == [None, 4, 8]


def test_json_has_no_batch_unless_given_and_names_the_crop_axes():
    """TF's output_shape takes the input's batch: with no --batch, the JSON says null there;
    the crop of a channels-last target is on axes 1 and 2."""
    args = ["convert", "--from", "torch", "--to", "tf", "--layer-input", "4x4", "--kernel", "3",
            "--stride", "2", "--padding", "1", "--json"]
    data = json.loads(tconv(*args)[1])
    assert data["layer"]["output_shape"] == [None, 7, 7, 1]
    assert data["input_shape"][0] is None and data["output_shape"][0] is None
    torch_to_keras = json.loads(tconv("convert", "--from", "onnx", "--to", "keras",
                                      "--layer-input", "4x4", "--kernel", "3", "--stride", "2",
                                      "--padding", "1,1,0,0", "--json")[1])
    assert torch_to_keras["crop_axes"] == [1, 2] and torch_to_keras["output_format"] == "NHWC"
    batched = json.loads(tconv(*args, "--batch", "3")[1])
    assert batched["layer"]["output_shape"] == [3, 7, 7, 1] and batched["input_shape"][0] == 3


def test_bias_travels_unless_no_bias():
    on = json.loads(tconv("convert", "--from", "keras", "--to", "torch", "--layer-input", "4",
                          "--kernel", "3", "--json")[1])
    off = json.loads(tconv("convert", "--from", "keras", "--to", "torch", "--layer-input", "4",
                           "--kernel", "3", "--no-bias", "--json")[1])
    assert on["source"]["layer"]["use_bias"] is True and on["layer"]["bias"] is True
    assert off["source"]["layer"]["use_bias"] is False and off["layer"]["bias"] is False


def test_every_command_shows_an_example_in_its_help():
    import typer

    group = typer.main.get_command(app)
    for name in group.commands:
        code, out, _ = tconv(name, "--help")
        assert code == 0 and "Example" in out and f"tconv {name}" in out, name
