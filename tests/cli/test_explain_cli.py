"""`tconv explain`, `shape`, `overlap`, `matrix` end to end, and the files they draw."""
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from tconv.explain import story
from tconv.methods import reference
from tconv.explain.animation import animate
from tconv.cli.app import app
from tconv.ops import transpose
from tconv.spec import ConvSpec

TCONV = [sys.executable, "-m", "tconv.cli"]
EXPERIMENT = ConvSpec.forward((1, 1, 4, 4), (1, 1, 3, 3), stride=2, padding=1)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run(*args):
    return subprocess.run(TCONV + list(args), capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"})


def _rgb(path, frame=0):
    from PIL import Image

    im = Image.open(path)
    im.seek(frame)
    return np.asarray(im.convert("RGB"))


def _reddish(pixels) -> int:
    r, g, b = (pixels[..., i].astype(int) for i in range(3))
    return int(((r > 150) & (g < 110) & (b < 110)).sum())


def _has_colour(pixels, hex_colour, tolerance=6) -> int:
    """How many pixels are within ``tolerance`` of the colour."""
    rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(pixels.astype(int) - rgb).max(axis=-1) <= tolerance).sum())


# -- tconv explain ---------------------------------------------------------------------------------

def test_explain_default_tells_the_whole_story():
    proc = run("explain")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "input (1, 1, 4, 4), weight (1, 1, 3, 3), stride (2, 2), padding (1, 1)" in out
    for step in story.explain(EXPERIMENT).steps:
        assert step.title in out
    assert "floor((4 + 1 + 1 - 3) / 2) + 1 = 2" in out
    assert "o[i] = sum_j w[j]" in out            # the rich markup did not eat the indices
    assert "conv_transpose(g, w, stride=2, padding=1, output_padding=1" in out


def test_explain_json_arrays_are_the_experiment_computed_by_torch():
    torch = pytest.importorskip("torch")
    proc = run("explain", "--ints", "--json", "--seed", "3")
    assert proc.returncode == 0, proc.stderr
    steps = {s["key"]: s for s in json.loads(proc.stdout)["steps"]}
    panels = {p["name"]: np.array(p["values"]) for p in steps["forward"]["panels"]}
    x = torch.tensor(panels["x (input)"], dtype=torch.float64, requires_grad=True)
    w = torch.tensor(panels["w (kernel)"], dtype=torch.float64)
    o = torch.nn.functional.conv2d(x, w, stride=2, padding=1)
    (o * o).sum().div(2).backward()
    np.testing.assert_array_equal(panels["o = conv(x, w)"], o.detach().numpy())
    result = {p["name"]: np.array(p["values"]) for p in steps["convolution"]["panels"]}["dL/dx"]
    np.testing.assert_array_equal(result, x.grad.numpy())
    assert steps["padding"]["facts"]["transpose_padding"] == [[1, 2], [1, 2]]


@pytest.mark.parametrize("args", [
    ["--input", "2,4,5", "--out-channels", "6", "--groups", "2", "--dilation", "2"],
    ["--input", "1,1,3,3,3", "--kernel", "2", "--stride", "1", "--padding", "0"],
    ["--input", "1,2,6,5", "--out-channels", "2", "--padding", "0:1,2:0", "--stride", "3,2"],
])
def test_explain_any_spec(args):
    proc = run("explain", "--ints", *args)
    assert proc.returncode == 0, proc.stderr
    assert "The matrix C" in proc.stdout


@pytest.mark.parametrize("command, args, message", [
    ("explain", ["--stride", "0"], "stride must be >= 1 in every dim, got (0, 0)"),
    ("explain", ["--kernel", "9"], "kernel size 9"),
    ("explain", ["--input", "1,1,4,4,4", "--png", "never"], "figures draw 1-d and 2-d"),
    ("explain", ["--input", "1,1,30,30", "--gif", "never.gif"], "frames"),
    ("shape", ["--groups", "3", "--input", "1,4,8,8"], "groups=3 must divide"),
    ("shape", ["--padding", "x"], "--padding takes integers"),
    ("overlap", ["--dims", "3"], "--dims must be 1 or 2, got 3"),
    ("overlap", ["--stride", "0"], "stride must be >= 1"),
    ("overlap", ["--kernel", "a"], "--kernel takes integers"),
    ("matrix", ["--input", "4,4"], "--input must be N,C,*spatial"),
    ("matrix", ["--input", "1,1,300,300"], "to show densely"),
])
def test_bad_input_one_line_exit_2(command, args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, [command] + args)
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert result.stdout == ""                   # no half-printed story
    assert not list(tmp_path.iterdir())          # nor half-written files


def test_without_matplotlib_text_works_and_figures_fail_in_one_line(tmp_path):
    block = ("import sys; sys.modules['matplotlib'] = None; sys.argv[0] = 'tconv'; "
             "from tconv.cli import main; main()")
    for args in (["explain", "--png", str(tmp_path / "d")], ["overlap", "--png", "o.png"],
                 ["matrix", "--png", "m.png"], ["explain", "--gif", "a.gif"]):
        proc = subprocess.run([sys.executable, "-c", block] + args, capture_output=True,
                              text=True, cwd=tmp_path)
        assert proc.returncode == 2, args
        assert proc.stderr.count("\n") == 1 and "pip install 'tconv[plot]'" in proc.stderr
    proc = subprocess.run([sys.executable, "-c", block, "explain"], capture_output=True,
                          text=True)
    assert proc.returncode == 0 and "The matrix C" in proc.stdout
    assert not list(tmp_path.iterdir())


# -- tconv shape -----------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    [],
    ["--input", "1,1,7,9", "--kernel", "3", "--dilation", "1,3", "--stride", "3,2",
     "--padding", "0:1,2:2"],
    ["--input", "2,3,11", "--kernel", "4", "--stride", "4", "--padding", "same"],
])
def test_shape_json_agrees_with_convspec_and_torch(args):
    torch = pytest.importorskip("torch")
    proc = run("shape", "--json", *args)
    assert proc.returncode == 0, proc.stderr
    facts = json.loads(proc.stdout)
    shape = facts["input_shape"]
    for d in facts["dims"]:
        size = list(shape[2:])
        same = [n for r in d["choices"] if r["collapses"]
                for n in range(r["size"][0], r["size"][1] + 1)]
        assert d["input"] in same or d["output_padding"] >= d["stride"]
        for n in same:
            size[d["dim"]] = n
            pads = [(0, 0)] * len(size)
            pads[d["dim"]] = tuple(d["padding"])
            x = torch.nn.functional.pad(torch.zeros([1, 1] + size),
                                        [p for pair in reversed(pads) for p in pair])
            w = torch.zeros((1, 1) + (1,) * d["dim"] + (d["kernel"],) +
                            (1,) * (len(size) - d["dim"] - 1))
            conv = getattr(torch.nn.functional, f"conv{len(size)}d")
            stride = [1] * len(size)
            stride[d["dim"]] = d["stride"]
            dilation = [1] * len(size)
            dilation[d["dim"]] = d["dilation"]
            out = conv(x, w, stride=stride, dilation=dilation)
            assert out.shape[2 + d["dim"]] == d["output"]


def test_shape_table_marks_the_input_sizes():
    proc = run("shape")
    assert proc.returncode == 0
    assert "input sizes 3, 4 all give forward output 2" in proc.stdout
    assert "this spec's input; collapses onto 2" in proc.stdout


# -- tconv overlap ---------------------------------------------------------------------------------

@pytest.mark.parametrize("k, s, d, dims, size", [(3, 2, 1, 2, 6), (4, 2, 1, 1, 5),
                                                  (3, 3, 2, 2, 4)])
def test_overlap_json_counts_every_tap_once(k, s, d, dims, size):
    proc = run("overlap", "--kernel", str(k), "--stride", str(s), "--dilation", str(d),
               "--dims", str(dims), "--size", str(size), "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    counts = np.array(data["counts"])
    assert counts.ndim == dims and counts.sum() == data["total"] == size ** dims * k ** dims
    # each input cell i stamps k taps at i*s + j*d: count them independently
    line = np.zeros((size - 1) * s + d * (k - 1) + 1, dtype=int)
    for i in range(size):
        line[i * s + d * np.arange(k)] += 1
    expected = line if dims == 1 else np.outer(line, line)
    np.testing.assert_array_equal(counts, expected)
    assert data["even"] is (len(set(line[len(line) // 2 - s:len(line) // 2 + s])) == 1)


def test_overlap_text_says_uneven_and_how_to_fix_it():
    proc = run("overlap", "--kernel", "3", "--stride", "2")
    assert proc.returncode == 0
    out = " ".join(proc.stdout.split())
    assert "uneven" in out and "kernel sizes 2, 4, 6 (multiples of the stride)" in out
    assert "324 taps in all = 36 input cells x 9 kernel taps" in out


# -- tconv matrix ----------------------------------------------------------------------------------

def test_matrix_json_is_the_convolution_and_its_transpose():
    proc = run("matrix", "--ints", "--json", "--input", "1,2,5,4", "--out-channels", "2",
               "--groups", "2", "--stride", "2,1")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    spec = ConvSpec.forward((1, 2, 5, 4), (2, 1, 3, 3), stride=(2, 1), padding=1, groups=2)
    c = np.array(data["C"])
    assert c.shape == (2 * math.prod(spec.output_size), 2 * 20) == tuple(data["shape"])
    x, w = story.sample_data(spec, ints=True, seed=0)       # the data --ints --seed 0 draws
    y = np.random.default_rng(1).integers(-3, 4, size=spec.output_shape)
    np.testing.assert_array_equal(c @ x.ravel(), reference.conv(x, w, spec).ravel())
    np.testing.assert_array_equal(c.T @ y.ravel(), transpose(y, w, spec).ravel())
    assert data["dot_test"]["passed"] and data["dot_test"]["lhs"] == data["dot_test"]["rhs"]


# -- the files -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    """The default explanation drawn once: step PNGs, the GIF, overlap and matrix PNGs."""
    pytest.importorskip("matplotlib")
    pytest.importorskip("PIL")
    out = tmp_path_factory.mktemp("figures")
    for args in (["explain", "--ints", "--png", str(out / "steps"), "--gif",
                  str(out / "explain.gif")],
                 ["overlap", "--png", str(out / "overlap.png")],
                 ["matrix", "--ints", "--png", str(out / "matrix.png")]):
        proc = run(*args)
        assert proc.returncode == 0, proc.stderr
    return out


def test_step_pngs_are_valid_and_show_the_cell_kinds(drawn):
    from PIL import Image

    from tconv.explain import drawing

    files = sorted((drawn / "steps").iterdir())
    keys = [s.key for s in story.explain(EXPERIMENT).steps]
    assert [f.name for f in files] == [f"{i:02d}-{k}.png" for i, k in enumerate(keys, 1)]
    for f in files:
        assert f.read_bytes()[:8] == PNG_MAGIC
        with Image.open(f) as im:
            im.verify()
            assert im.width >= 8 * drawing.DPI               # the minimum figure width
            assert im.height >= 4 * drawing.CELL * drawing.DPI   # at least a 4-cell array
    orange, yellow = drawing.KIND_COLOURS["output_padding"], drawing.KIND_COLOURS["inserted"]
    padding = _rgb(drawn / "steps" / "05-padding.png")
    forward = _rgb(drawn / "steps" / "01-forward.png")
    cell = int(drawing.CELL * drawing.DPI) ** 2 // 2
    # 11 output_padding cells (a row and a column of 6) and 5 inserted zeros in the 6x6 canvas
    assert _has_colour(padding, orange) >= 11 * cell and _has_colour(padding, yellow) >= 5 * cell
    assert _has_colour(forward, orange) == 0 and _has_colour(forward, yellow) == 0


def test_gif_has_one_frame_per_cell_and_stays_small(drawn):
    from PIL import Image

    from tconv.explain import drawing

    path = drawn / "explain.gif"
    assert path.read_bytes()[:6] == b"GIF89a"
    assert path.stat().st_size < 300_000
    e = story.explain(EXPERIMENT, ints=True)
    anim = animate(EXPERIMENT, e.g, e.w)
    with Image.open(path) as im:
        assert im.n_frames == 3 + 4 + 16 == len(anim.frames)
        sizes = set()
        for i in range(im.n_frames):
            im.seek(i)
            sizes.add(im.size)
        assert len(sizes) == 1
    box = 4 * 0.8 * drawing.CELL * drawing.GIF_DPI          # pixels of one outlined cell
    for i, frame in enumerate(anim.frames):
        outlined = _reddish(_rgb(path, i))
        if frame.view == "title":   # no outline (a stray quantized pixel at most)
            assert outlined < box / 4
        else:   # the kernel's taps and the current cell are outlined in red
            assert outlined > (len(frame.taps) + 1) * box


def test_overlap_and_matrix_pngs(drawn):
    from PIL import Image

    for name in ("overlap.png", "matrix.png"):
        path = drawn / name
        assert path.read_bytes()[:8] == PNG_MAGIC
        with Image.open(path) as im:
            im.verify()
            assert im.width > 600 and im.height > 400


# -- huge strides and sizes: described, or refused naming the sizes --------------------------------

def test_shape_overlap_and_explain_of_huge_strides_and_sizes():
    """`shape --stride 10000` took 18 s, `overlap --dims 1 --stride 1000` 70 s, `overlap --size
    10**9` and `explain --stride 10**9` gigabytes: now ranges and periods are described, and
    what cannot be shown is one line on stderr naming the sizes, exit 2."""
    proc = run("shape", "--stride", "10000", "--json")
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)["dims"][0]
    assert [r["output_padding"] for r in d["choices"]] == [[0, 2], [3, 3], [4, 9999]]
    assert d["input_sizes"] == {"first": 1, "last": 10000, "output_padding": [0, 9999]}
    proc = run("shape", "--stride", "10000")
    assert "input sizes 1..10000 all give forward output 1" in proc.stdout
    assert "4..9999" in proc.stdout and "5..10000" in proc.stdout
    proc = run("overlap", "--dims", "1", "--stride", "1000")
    assert proc.returncode == 0, proc.stderr
    assert "repeat 0x499 1x3 0x498 (1000 counts)" in " ".join(proc.stdout.split())
    proc = run("overlap", "--size", "1000000000", "--dims", "1")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == ("tconv: error: the overlap map of input 1000000000, kernel 3, stride "
                           "2, dilation 1 would have 2000000001 cells and a period of 2, more "
                           "than 1048576 to compute and show; use a smaller --size, --kernel or "
                           "--stride\n")
    proc = run("explain", "--stride", "1000000000", "--json")
    assert proc.returncode == 0, proc.stderr
    steps = {s["key"]: s for s in json.loads(proc.stdout)["steps"]}
    assert steps["dropped"]["facts"]["input_sizes"] == [[1, 10**9]] * 2
    proc = run("explain", "--input", "1,1,4", "--kernel", "3", "--stride", "1000000000",
               "--padding", "400000000")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("tconv: error: the explanation would compute and show the "
                                  "padded input of 1 x 800000004 = 800000004 cells")
