"""ONNX backend-test cases for ``ConvTranspose``, with the expected output from exact arithmetic.

``write(directory, count, seed)`` draws ``count`` specs as ``tconv sweep`` does and, for each,
three siblings that the ONNX padding modes exist for: its ``'same'`` version (the odd padding
cell at the end, ONNX's ``SAME_UPPER``), the same with the padding mirrored (the odd cell at the
start, ``SAME_LOWER``) and its unpadded version (``VALID``). Each spec is written in every
attribute form that says it (:func:`tconv.frameworks.onnx.form_attributes`: explicit
``pads`` and ``output_padding``; ``output_shape``; ``auto_pad``) as one test case in the layout of
ONNX's own node tests::

    <directory>/test_convtranspose_tconv_<n>_<variant>_<form>/
        model.onnx                       one ConvTranspose node, inputs X and W, output Y
        data.json                        {"rtol": 0, "atol": <bound>}
        test_data_set_0/input_0.pb       X, the upstream gradient (N, C, *o), float32
        test_data_set_0/input_1.pb       W, the weight (C, M/group, *k), float32
        test_data_set_0/output_0.pb      Y, exact, rounded once to float32

``onnx.backend.test.loader.load_model_tests(data_dir=<parent>, kind=<directory name>)`` loads
them, and ``onnx.backend.test.runner.Runner`` runs them against any ONNX backend. The tolerance
``atol`` is the largest of tconv's per-cell rounding bounds (:func:`tconv.verify.error_bound`):
any summation order in float32 stays within it, so a failure is a wrong result, not rounding.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np

from .spec import ConvSpec, ConvSpecError

#: The variants of each drawn spec, in the order they are written.
VARIANTS = ("drawn", "same_upper", "same_lower", "valid")


@dataclass(frozen=True)
class Case:
    """One test case: the spec, the variant it came from, the form and the node's attributes."""

    name: str
    spec: ConvSpec
    variant: str
    form: str
    attrs: dict


def _variants(spec: ConvSpec) -> dict[str, ConvSpec]:
    """``spec`` and its 'same' (odd cell high, then low) and unpadded siblings, where valid."""
    def transpose(**kw):
        try:
            return ConvSpec.transpose(spec.output_shape, spec.weight_shape, stride=spec.stride,
                                      dilation=spec.dilation, groups=spec.groups, **kw)
        except ConvSpecError:
            return None

    same = transpose(padding="same")
    lower = None if same is None else transpose(
        padding=[(hi, lo) for lo, hi in same.padding], output_padding=same.output_padding)
    found = {"drawn": spec, "same_upper": same, "same_lower": lower, "valid": transpose()}
    return {name: s for name, s in found.items() if s is not None}


def cases(count: int, seed: int = 0, dims=(1, 2, 3)) -> list[Case]:
    """Every (spec, form) pair of ``count`` drawn specs and their variants, deduplicated; the
    ``auto_pad`` form once per mode that says the spec."""
    from .frameworks.onnx import FORMS, auto_pad_forms, form_attributes
    from .sweep import draw_specs

    result, seen = [], set()
    for i, drawn in enumerate(draw_specs(count, seed, dims)):
        for variant, spec in _variants(drawn).items():
            for form in FORMS:
                if form == "auto_pad":
                    found = [(f"auto_pad_{a['auto_pad'].lower()}", a)
                             for a in auto_pad_forms(spec)[0]]
                else:
                    attrs, why = form_attributes(spec, form)
                    found = [] if why else [(form, attrs)]
                for form_name, attrs in found:
                    key = (spec, json.dumps(attrs, sort_keys=True))
                    if key in seen:
                        continue
                    seen.add(key)
                    result.append(Case(f"test_convtranspose_tconv_{i:04d}_{variant}_{form_name}",
                                       spec, variant, form_name, attrs))
    return result


def features(case: Case) -> set[str]:
    """The attribute combinations a case exercises (for coverage reports and tests)."""
    spec, attrs = case.spec, case.attrs
    found = {f"{spec.ndim}-d", f"auto_pad {attrs.get('auto_pad', 'NOTSET')}"}
    if "output_shape" in attrs:
        found.add("output_shape")
    if any(attrs.get("output_padding", ())):
        found.add("output_padding" + (" with output_shape" if "output_shape" in attrs else "")
                  + (" with auto_pad" if "auto_pad" in attrs else ""))
    pads = attrs.get("pads")
    if pads and any(pads):
        found.add("pads")
        n = len(pads) // 2
        if pads[:n] != pads[n:]:
            found.add("asymmetric pads")
    if any(d > 1 for d in spec.dilation):
        found.add("dilations")
    if any(s > 1 for s in spec.stride):
        found.add("strides")
    if spec.groups > 1:
        found.add("group")
        if spec.in_channels > spec.groups or spec.out_channels > spec.groups:
            found.add("group with several channels per group")
    if any(d > 1 for d in spec.dilation) and any(s > 1 for s in spec.stride) and any(
            attrs.get("output_padding", ())):
        found.add("dilations with strides and output_padding")
    if spec.batch > 1:
        found.add("batch > 1")
    return found


def write_case(directory: str, case: Case, seed: int) -> None:
    """Write one case (see the module docstring); data drawn from ``seed``."""
    from onnx import helper, numpy_helper, save

    from . import exact
    from .frameworks.onnx import IR_VERSION, OPSET
    from .strategies import arrays_for
    from .verify import error_bound

    spec = case.spec
    _, w, g = arrays_for(spec, seed, np.float32)
    expected = exact.conv_transpose_rounded(g, w, spec, np.float32)
    bound = error_bound(g, w, spec, exact.conv_transpose(g, w, spec), np.float32)
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(np.float32))
    node = helper.make_node("ConvTranspose", ["X", "W"], ["Y"], **case.attrs)
    graph = helper.make_graph(
        [node], case.name,
        [helper.make_tensor_value_info("X", elem, list(g.shape)),
         helper.make_tensor_value_info("W", elem, list(w.shape))],
        [helper.make_tensor_value_info("Y", elem, list(expected.shape))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              ir_version=IR_VERSION, producer_name="tconv vectors")
    folder = os.path.join(directory, case.name)
    data = os.path.join(folder, "test_data_set_0")
    os.makedirs(data, exist_ok=True)
    save(model, os.path.join(folder, "model.onnx"))
    with open(os.path.join(folder, "data.json"), "w") as f:
        json.dump({"rtol": 0.0, "atol": float(bound.max(initial=0.0))}, f)
    for name, array in (("input_0.pb", g), ("input_1.pb", w), ("output_0.pb", expected)):
        with open(os.path.join(data, name), "wb") as f:
            f.write(numpy_helper.from_array(array).SerializeToString())


def write(directory: str, count: int, seed: int = 0, dims=(1, 2, 3)) -> list[Case]:
    """Write the cases of ``count`` drawn specs into ``directory``; returns them."""
    os.makedirs(directory, exist_ok=True)
    written = cases(count, seed, dims)
    for i, case in enumerate(written):
        write_case(directory, case, seed + i)
    return written
