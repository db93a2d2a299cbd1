"""Every reproduction in docs/reproductions/ still shows its disagreement.

Each script needs only numpy and the package it is about, computes the expected values with a
plain loop, prints both and exits 1 while they differ (0 once fixed upstream). Here each runs in
its own process in tconv's environment; onnx2torch and nobuco get the same preparation the
backends give them (a torchvision that imports beside the CPU torch; Keras 2 as `keras` for
nobuco), so the scripts themselves stay as a maintainer would run them.
"""
import os
import subprocess
import sys

import pytest

from tconv.frameworks import available

HERE = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "reproductions")

#: script -> (backend whose packages it needs, preparation run before it, what it shows)
SCRIPTS = {
    "openvino_onnx_group_output_shape.py": ("openvino", None, "DIFFERS"),
    "openvino_output_padding_past_stride.py": ("openvino", None, "DIFFERS"),
    "tf2onnx_explicit_padding.py": ("tf2onnx", None, "DIFFERS"),
    "onnx2tf_same_upper.py": ("onnx2tf", None, "DIFFERS"),
    "onnx2torch_output_shape.py": (
        "onnx2torch", "from tconv.frameworks._torchvision import import_torchvision; "
                      "import_torchvision()", "DIFFERS"),
    "nobuco_kernel_below_stride.py": (
        "nobuco", "from tconv.frameworks.nobuco import child_init; child_init()",
        "DIFFERS"),
    "torch_onnx_output_padding_past_stride.py": ("torch.onnx", None, "DIFFERS"),
}


def test_every_script_is_listed():
    assert sorted(SCRIPTS) == sorted(f for f in os.listdir(HERE) if f.endswith(".py"))


@pytest.mark.parametrize("script", SCRIPTS)
def test_reproduction_still_differs(script, tmp_path):
    backend, preparation, word = SCRIPTS[script]
    if not available(backend):
        pytest.skip(f"{backend} is not installed")
    path = os.path.abspath(os.path.join(HERE, script))
    code = (f"{preparation or 'pass'}\nimport runpy, sys\nsys.argv = [{path!r}]\n"
            f"try:\n    runpy.run_path({path!r}, run_name='__main__')\n"
            f"except SystemExit as e:\n    sys.exit(e.code)\n")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "-1"}
    if backend == "nobuco":
        env["TF_USE_LEGACY_KERAS"] = "1"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=300)
    if proc.returncode == 0 and "FIXED" in proc.stdout:
        pytest.fail(f"{script}: the bug is fixed in the installed version; update "
                    f"docs/conformance.md and the backend.\n{proc.stdout}")
    assert proc.returncode == 1, proc.stdout + proc.stderr[-2000:]
    assert word in proc.stdout and "expected" in proc.stdout or "fails" in proc.stdout
