"""`tconv vectors`: ONNX backend-test cases that onnx's own loader and runner accept, expected
outputs from exact arithmetic, and onnxruntime passing them (the sweep finds it right)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tconv import exact, vectors
from tconv.spec import ConvSpec

onnx = pytest.importorskip("onnx")

#: Attribute combinations ConvTranspose allows that the cases must cover.
REQUIRED = {"1-d", "2-d", "3-d", "auto_pad NOTSET", "auto_pad SAME_UPPER", "auto_pad SAME_LOWER",
            "auto_pad VALID", "output_shape", "output_padding", "output_padding with output_shape",
            "output_padding with auto_pad", "pads", "asymmetric pads", "dilations", "strides",
            "group", "group with several channels per group",
            "dilations with strides and output_padding", "batch > 1"}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    directory = tmp_path_factory.mktemp("vectors") / "tconv_convtranspose"
    return str(directory), vectors.write(str(directory), 25, seed=0)


def test_cases_cover_every_attribute_combination(written):
    directory, cases = written
    covered = set().union(*(vectors.features(c) for c in cases))
    assert REQUIRED <= covered, REQUIRED - covered
    assert len({c.name for c in cases}) == len(cases) == len(os.listdir(directory))


def test_the_onnx_loader_reads_them_and_the_expected_output_is_exact(written):
    """load_model_tests finds every case with its data.json tolerance; output_0.pb is the exact
    result rounded once to float32, recomputed here from the stored inputs."""
    from onnx import numpy_helper
    from onnx.backend.test.loader import load_model_tests

    directory, cases = written
    loaded = {t.name: t for t in load_model_tests(data_dir=os.path.dirname(directory),
                                                   kind=os.path.basename(directory))}
    assert set(loaded) == {c.name for c in cases}
    for case in cases[::7]:
        test = loaded[case.name]
        data = json.load(open(os.path.join(test.model_dir, "data.json")))
        assert test.rtol == 0 and test.atol == data["atol"] > 0
        read = [numpy_helper.to_array(onnx.load_tensor(os.path.join(
            test.model_dir, "test_data_set_0", f"{n}.pb"))) for n in ("input_0", "input_1",
                                                                     "output_0")]
        g, w, y = read
        assert y.dtype == np.float32 and y.shape == case.spec.input_shape
        want = np.array([float(v) for v in exact.conv_transpose(
            g.astype(np.float64), w.astype(np.float64), case.spec).ravel()]).reshape(y.shape)
        assert np.all(np.abs(y.astype(np.float64) - want) <= np.spacing(np.abs(want).astype(
            np.float32)).astype(np.float64) / 2 + 1e-300)
        model = onnx.load(os.path.join(test.model_dir, "model.onnx"))
        onnx.checker.check_model(model)
        (node,) = model.graph.node
        assert node.op_type == "ConvTranspose"


def _run_as_the_runner_does(backend, test):
    """What onnx.backend.test.runner.Runner does for one loaded case with a model_dir: load
    model.onnx, read each test_data_set's input_*.pb and output_*.pb with numpy_helper, prepare
    the backend, run, compare with assert_allclose(rtol, atol) from the case."""
    import glob

    from onnx import numpy_helper

    model = onnx.load(os.path.join(test.model_dir, "model.onnx"))
    prepared = backend.prepare(model, "CPU")
    for data_set in glob.glob(os.path.join(test.model_dir, "test_data_set*")):
        inputs, expected = ([numpy_helper.to_array(onnx.load_tensor(p)) for p in sorted(
            glob.glob(os.path.join(data_set, f"{kind}_*.pb")))] for kind in ("input", "output"))
        outputs = list(prepared.run(inputs))
        assert len(outputs) == len(expected)
        for out, ref in zip(outputs, expected):
            np.testing.assert_allclose(out, ref, rtol=test.rtol, atol=test.atol)


def test_onnxruntime_passes_them(written):
    """Every case loaded by onnx's loader and run by onnxruntime's ONNX backend as the runner
    runs it passes: the sweep finds every onnxruntime way right. One output moved by three times
    its tolerance fails, so the comparison is real."""
    ort_backend = pytest.importorskip("onnxruntime.backend")
    from onnx.backend.test.loader import load_model_tests

    directory, cases = written
    loaded = load_model_tests(data_dir=os.path.dirname(directory),
                              kind=os.path.basename(directory))
    assert len(loaded) == len(cases)
    for test in loaded:
        _run_as_the_runner_does(ort_backend, test)

    import shutil

    from onnx import numpy_helper

    test = next(t for t in loaded if t.name.endswith("_pads"))
    broken = os.path.join(os.path.dirname(directory), "broken", test.name)
    shutil.copytree(test.model_dir, broken)
    path = os.path.join(broken, "test_data_set_0", "output_0.pb")
    y = numpy_helper.to_array(onnx.load_tensor(path)).copy()
    y.flat[0] += np.float32(3 * test.atol + 1e-3)
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(y).SerializeToString())
    (moved,) = load_model_tests(data_dir=os.path.dirname(directory), kind="broken")
    with pytest.raises(AssertionError):
        _run_as_the_runner_does(ort_backend, moved)


def test_rounded_once_not_twice():
    """1 + 2**-24 + 2**-60 rounds to 1 + 2**-24 in float64, a float32 tie that rounds to 1.0;
    rounded once, the exact value is above the tie: 1 + 2**-23."""
    spec = ConvSpec.transpose((1, 3, 1), (3, 1, 1))
    y = np.array([[[1.0], [2.0**-24], [2.0**-60]]])
    w = np.ones((3, 1, 1))
    assert exact.conv_transpose(y, w, spec).astype(np.float32)[0, 0, 0] == 1.0
    assert exact.conv_transpose_rounded(y, w, spec, np.float32)[0, 0, 0] == np.float32(
        1 + 2.0**-23)


def test_cli(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "tconv.cli", "vectors", str(tmp_path / "v"),
                           "--count", "3", "--json"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert sorted(report["cases"]) == sorted(os.listdir(tmp_path / "v"))
    proc = subprocess.run([sys.executable, "-m", "tconv.cli", "vectors", str(tmp_path / "w"),
                           "--count", "0"], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.startswith("tconv: error: --count")
