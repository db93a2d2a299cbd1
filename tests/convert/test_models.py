"""Whole models through the command line: `tconv convert MODEL --to X` finds every transposed
convolution of a DCGAN-style generator, a U-Net decoder and a 1-d audio decoder, in torch,
Keras and ONNX, converts each and checks it against the model's own layer; `tconv audit MODEL`
prints its table and its JSON.

The commands run in this process (typer's runner: the frameworks start once); one test runs
the installed `tconv` in a subprocess, as a user does.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import small_models
from tconv.cli.app import app

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
#: Keras 3.15 saving a model calls np.array on its tensors the way NumPy 2.4 deprecates
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
MODELS = list(small_models.BUILDERS)
#: each model to two targets, different per source, so that every target is met
TARGETS = {"torch": ("keras", "onnx"), "keras": ("torch", "flax"), "onnx": ("torch", "jax")}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    directory = tmp_path_factory.mktemp("models")
    return {key: small_models.save(*key, directory) for key in MODELS}


def tconv(*args):
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False,
                                env={"COLUMNS": "200"})
    return result.exit_code, result.stdout


def _model_input(framework, shape):
    return ["--model-input", ",".join(map(str, shape))] if framework == "torch" else []


@pytest.mark.parametrize("key", MODELS, ids=lambda k: "-".join(k))
def test_convert_model_converts_and_checks_every_transposed_convolution(files, key):
    path, model, shape, count = files[key]
    for to in TARGETS[key[0]]:
        code, out = tconv("convert", path, "--to", to, "--check", "--json",
                          *_model_input(key[0], shape))
        data = json.loads(out)
        assert code == 0 and data["passed"], data
        assert len(data["layers"]) == count and data["from"] == key[0]
        assert "the rest of the model is not" in data["note"]
        for layer in data["layers"]:
            check = layer["check"]
            assert check["passed"] and check["max_diff"] <= 2 * check["bound"], layer
            assert layer["bias"] is True


def test_a_converted_generator_runs_layer_by_layer_as_the_keras_one(files):
    """The Keras generator's three Conv2DTranspose, converted to torch, with the model's other
    layers (batch norm, the activations) written by hand between them: the same images."""
    import keras
    import torch

    from tconv import convert

    path, model, shape, _ = files["keras", "dcgan"]
    result = convert.model(path, "torch")
    up1, up2, up3 = (r.target for _, r in result.layers)
    bn = model.layers[1]
    gamma, beta, mean, var = (torch.from_numpy(np.asarray(v)) for v in bn.get_weights())
    z = np.random.default_rng(0).standard_normal((2, 1, 1, 8)).astype(np.float32)
    want = np.asarray(model(z, training=False))
    with torch.no_grad():
        x = up1(torch.from_numpy(z).permute(0, 3, 1, 2))
        x = (x - mean[:, None, None]) / torch.sqrt(var[:, None, None] + bn.epsilon)
        x = torch.relu(x * gamma[:, None, None] + beta[:, None, None])
        x = torch.tanh(up3(torch.relu(up2(x))))
    got = x.permute(0, 2, 3, 1).numpy()
    assert isinstance(model.layers[0], keras.layers.Conv2DTranspose)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    assert "activation 'relu' is not converted" in " ".join(result.layers[1][1].notes)


@pytest.mark.parametrize("key", MODELS, ids=lambda k: "-".join(k))
def test_audit_lists_each_layer_with_sizes_overlap_and_bugs(files, key):
    path, _, shape, count = files[key]
    code, out = tconv("audit", path, "--json", "--backends", "torch,onnx",
                      *_model_input(key[0], shape))
    assert code == 0, out
    layers = json.loads(out)["layers"]
    assert len(layers) == count
    for layer in layers:
        assert set(layer["frameworks"]) >= {"torch", "tensorflow", "keras", "jax", "flax",
                                            "onnx", "litert"}
        for d in layer["sizes"]:        # every size listed is one the layer could return
            assert d["this"] in d["sizes"] and len(d["sizes"]) >= 1
        for d in layer["overlap"]:      # the pattern sums to the kernel's taps over a period
            assert sum(d["pattern"]) == d["kernel"] and len(d["pattern"]) == d["stride"]
            assert d["even"] == (d["kernel"] % d["stride"] == 0)
    if key == ("onnx", "unet"):         # pads [0, 0, 1, 1]: PyTorch needs a crop
        skip = next(layer for layer in layers if layer["name"] == "skip")
        assert skip["frameworks"]["torch"]["crop"] == [[0, 1], [0, 1]]
        assert skip["collides"] and skip["uneven_overlap"]
    if key == ("onnx", "dcgan"):        # pads 1: onnx.reference's output_shape form ignores them
        up2 = next(layer for layer in layers if layer["name"] == "up2")
        bugs = {b["way"]: b["reason"] for b in up2["known_bugs"]}
        assert "onnx#4527" in bugs["onnx.reference output_shape"]


@pytest.mark.parametrize("framework", ["torch", "keras", "onnx"])
def test_audit_prints_a_table_per_layer(files, framework):
    path, _, shape, count = files[framework, "unet"]
    code, out = tconv("audit", path, "--backends", "none", *_model_input(framework, shape))
    assert code == 0, out
    assert f"{count} transposed convolutions" in out
    assert out.count("overlap  dim 0") == count and "checkerboard risk" in out
    assert "framework" in out and "litert" in out


def test_the_installed_command_converts_a_torch_file(files):
    """`tconv convert model.pt` in a fresh process (the module's class importable from its
    file's directory, as torch.load needs)."""
    path, _, shape, count = files["torch", "unet"]
    env = {**os.environ, "PYTHONPATH": str(Path(small_models.__file__).parent)}
    proc = subprocess.run([sys.executable, "-m", "tconv.cli", "convert", str(path), "--to",
                           "onnx", "--check", "--model-input", ",".join(map(str, shape))],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("check: PASS") == count
    assert "all converted and equal" in proc.stdout


@pytest.mark.parametrize("args, message", [
    (["convert", "nowhere.onnx", "--to", "torch"], "model file 'nowhere.onnx' does not exist"),
    (["audit", "{dcgan}", "--json"], "give the model's input shape"),
])
def test_model_mistakes_are_one_line(files, tmp_path, args, message):
    args = [a.replace("{dcgan}", str(files["torch", "dcgan"][0])) for a in args]
    proc = subprocess.run([sys.executable, "-m", "tconv.cli", *args], capture_output=True,
                          text=True, cwd=tmp_path,
                          env={**os.environ,
                               "PYTHONPATH": str(Path(small_models.__file__).parent)})
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1


def test_a_layer_tconv_cannot_read_is_named_and_the_others_convert(tmp_path):
    """An ONNX ConvTranspose whose weight is computed in the graph (not an initializer) is
    listed with the reason; the model's other transposed convolution still converts."""
    from onnx import helper

    model, _, _ = small_models.onnx_audio()
    graph = model.graph
    graph.node.insert(0, helper.make_node("Identity", ["w2"], ["w2_computed"]))
    graph.node[-2].input[1] = "w2_computed"            # up2 reads the computed weight
    path = tmp_path / "audio.onnx"
    import onnx
    onnx.save(model, str(path))
    code, out = tconv("convert", path, "--to", "torch", "--json")
    data = json.loads(out)
    assert code == 1 and not data["passed"]
    up1, up2 = data["layers"]
    assert "layer" in up1 and "is not an initializer" in up2["refused"]
    code, out = tconv("audit", path, "--json", "--backends", "none")
    assert code == 0 and "is not an initializer" in json.loads(out)["layers"][1]["layer"]


def test_a_wrong_model_input_is_one_line(files):
    path, _, _, _ = files["torch", "dcgan"]
    code, out = tconv("convert", path, "--to", "onnx", "--model-input", "1,3,1,1", "--json")
    assert code == 2 and "on zeros of input_shape (1, 3, 1, 1)" in json.loads(out)["error"]
