"""``tconv vectors``: ONNX backend-test cases for ConvTranspose (see :mod:`tconv.vectors`)."""
from __future__ import annotations

import json
from collections import Counter

import typer

from .common import at_least_one, check_seed, fail, new_console, parse_dims, user_errors


def command(
    directory: str = typer.Argument(..., help="Folder to write the test cases into."),
    count: int = typer.Option(50, help="How many specs to draw (each gives up to 4 variants "
                                       "in up to 3 attribute forms)."),
    seed: int = typer.Option(0, help="Seed of the draw and of the data."),
    dims: str = typer.Option("1,2,3", help="Spatial dims to draw from."),
    as_json: bool = typer.Option(False, "--json", help="Print the cases and coverage as JSON."),
) -> None:
    """Write ConvTranspose test cases in the layout of ONNX's node tests.

    Each case is DIR/test_convtranspose_tconv_<n>_<variant>_<form>/ with model.onnx, data.json
    (rtol 0, atol = tconv's rounding bound) and test_data_set_0/{input_0,input_1,output_0}.pb;
    the expected output is exact arithmetic rounded once to float32. The specs are drawn as by
    `tconv sweep`, plus their SAME_UPPER, SAME_LOWER and VALID siblings, each in every form
    (pads, output_shape, auto_pad) that says it. Load them with
    onnx.backend.test.loader.load_model_tests(data_dir=<parent of DIR>, kind=<name of DIR>).

    Example: tconv vectors convtranspose_tests --count 100
    """
    from .. import vectors

    with user_errors(as_json):
        at_least_one("--count", count)
        check_seed(seed)
        dims_ = parse_dims(dims)
        try:
            written = vectors.write(directory, count, seed, dims_)
        except OSError as e:
            fail(f"cannot write {directory!r}: {e.strerror}", "directory", as_json=as_json)
    coverage = Counter(f for case in written for f in vectors.features(case))
    if as_json:
        print(json.dumps({"directory": directory, "cases": [c.name for c in written],
                          "coverage": dict(sorted(coverage.items()))}, indent=2))
        return
    out = new_console()
    out.print(f"{len(written)} ConvTranspose test cases in {directory}")
    for feature, n in sorted(coverage.items()):
        out.print(f"  {feature}: {n}", highlight=False)
