"""Choosing a target's parameters costs the same whatever the stride.

A target's output sizes or output_paddings number ``stride`` per dim; the writers try only the
few that can come closest to the source's window. These tests hold the pruned search to the
exhaustive one on small layers, and convert layers whose stride would make the exhaustive
search walk ten million candidates.
"""
from __future__ import annotations

import random
import tracemalloc

import pytest

import tconv.frameworks.onnx
import tconv.frameworks.openvino
import tconv.frameworks.tensorflow
import tconv.frameworks.torch
from tconv import convert, frameworks
from tconv.convert.window import windows
from tconv.spec import ConvSpec, ConvSpecError

PRUNING = {tconv.frameworks.torch: ("near", "worth_trying"),
           tconv.frameworks.tensorflow: ("worth_trying",)}


def _exhaustive(monkeypatch):
    """Every writer tries every candidate: the search before the pruning."""
    for module, names in PRUNING.items():
        for name in names:
            monkeypatch.setattr(module, name, lambda values, *_, **__: list(values))


def _small_specs(count: int, seed: int):
    rng = random.Random(seed)
    specs = []
    while len(specs) < count:
        nd = rng.choice((1, 2))
        kernel = [rng.randint(1, 12) for _ in range(nd)]
        stride = [rng.choice((1, 2, 3, rng.randint(7, 30))) for _ in range(nd)]
        dilation = [rng.choice((1, 1, 2, 3)) for _ in range(nd)]
        extent = [ConvSpec.extent(k, d) for k, d in zip(kernel, dilation)]
        padding = [(rng.randint(0, e - 1), rng.randint(0, e - 1)) for e in extent]
        output_padding = [rng.randrange(max(s, d)) for s, d in zip(stride, dilation)]
        size = [rng.randint(1, 5) for _ in range(nd)]
        try:
            specs.append(ConvSpec.transpose((1, 2, *size), (2, 3, *kernel), stride=stride,
                                            padding=padding, output_padding=output_padding,
                                            dilation=dilation))
        except ConvSpecError:          # a window of no cells
            pass
    return specs


def _writes(name: str, specs) -> list:
    """What the writer returns for each spec, or its refusal."""
    fw, found = frameworks.get(name), []
    for spec in specs:
        try:
            found.append(fw.write(spec, {}))
        except ConvSpecError as e:
            found.append(str(e))
    return found


@pytest.mark.parametrize("name", ["torch", "tensorflow", "keras"])
def test_the_few_candidates_tried_give_the_exhaustive_choice(name, monkeypatch):
    specs = _small_specs(400, seed=11)
    pruned = _writes(name, specs)
    _exhaustive(monkeypatch)
    assert pruned == _writes(name, specs)
    assert sum(isinstance(w, dict) for w in pruned) > len(specs) // 3   # written, not refused


def test_onnx_and_openvino_forms_match_a_search_of_every_output_padding():
    """The output_shape and SAME forms pick the output_padding whose derived total padding has
    the spec's start; an enumeration of all of them (the definition) picks the same one."""
    def split_search(low, base, stride, odd_low, prefer):
        order = [0, prefer, *range(stride)]
        return next((c for c in order if 0 <= c < stride and base + c >= 0
                     and ConvSpec.split_padding(base + c, odd_low)[0] == low), None)

    giving = tconv.frameworks.onnx.output_padding_giving
    for low in range(0, 6):
        for base in range(-8, 9):
            for stride in range(1, 7):
                for odd_low in (False, True):
                    for prefer in range(stride + 1):
                        assert (giving(low, base, stride, odd_low, prefer)
                                == split_search(low, base, stride, odd_low, prefer))


def _huge_stride_layer():
    return convert.from_flags("torch", input_size=(8, 8), kernel=3, stride=10**7, padding=3,
                              in_channels=2, out_channels=3)


@pytest.mark.parametrize("to", convert.FRAMEWORKS)
def test_a_stride_of_ten_million_converts_at_once(to):
    """Before, these writers enumerated 10**7 candidates per dim (gigabytes, minutes)."""
    layer = _huge_stride_layer()
    tracemalloc.start()
    try:
        result = convert.convert(layer, to)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20
    source, target = windows(layer.spec), windows(result.target.spec)
    # the crop turns the target's window into the source's, to the cell
    assert [(t0 + lo, t1 - hi) for (t0, t1), (lo, hi) in zip(target, result.crop)] == list(source)


def test_huge_strides_in_the_onnx_and_openvino_forms():
    """tconv verify --stride 10**9 built a list of 10**9 output_paddings in the ONNX form."""
    spec = ConvSpec.forward((1, 1, 4, 4), (1, 1, 3, 3), stride=10**9, padding=1)
    attrs, why = tconv.frameworks.onnx.form_attributes(spec, "output_shape")
    assert why is None and attrs["output_shape"] == [4, 4]
    total = (spec.output_size[0] - 1) * 10**9 + 3 + attrs["output_padding"][0] - 4
    assert ConvSpec.split_padding(total, odd_low=True)[0] == 1
    found, reasons = tconv.frameworks.onnx.auto_pad_forms(spec)
    assert not found and "spatial dim 0" in reasons[0]
    kwargs, why = tconv.frameworks.openvino._opset_attributes(spec, "output_shape")
    assert why is None and kwargs["output_shape"] == [4, 4]


def test_a_check_too_large_to_run_is_refused_with_the_sizes():
    """--check of the huge layer would need petabytes: one ConvSpecError naming the limit."""
    result = convert.convert(_huge_stride_layer(), "onnx")
    with pytest.raises(ConvSpecError, match="memory limit"):
        convert.check(result)
