"""A framework defined here, in the test, and nowhere else: verify, sweep and convert pick it
up from the registry (a Framework subclass registers itself), with no edit to tconv."""
import json

import numpy as np
import pytest
from typer.testing import CliRunner

import tconv
from tconv import convert, frameworks
from tconv.cli.app import app
from tconv.convert.layer import make
from tconv.convert.layout import Layout
from tconv.convert.window import spec_dims, windows
from tconv.frameworks import Framework, NotExpressible
from tconv.spec import ConvSpec
from tconv.strategies import arrays_for
from tconv.sweep import sweep
from tconv.verify import verify

from oracle import assert_exact


@pytest.fixture
def toy():
    """A toy framework: its input gradient is tconv's scatter (and a second way that cannot
    express groups); its layer is a ConvTranspose that takes tconv's own (low, high) padding
    and output_padding, channels first. Removed from the registry afterwards."""

    class Toy(Framework):
        name = "toy"
        aliases = ("toyfw",)
        title = "Toy"
        packages = ("numpy",)
        rank = 99
        flag_call = "toy.ConvTranspose"
        flags_taken = ("--layer-output-padding", "--groups")
        shape_args = ("input_shape",)

        def way_names(self, ndim):
            return ["toy scatter", "toy no-groups"]

        def input_grad_ways(self, spec, w, g):
            result = tconv.ops.transpose(g, w, spec, "scatter")
            return {"toy scatter": result,
                    "toy no-groups": NotExpressible("toy has no groups") if spec.groups > 1
                    else result}

        def read(self, input_shape, weight_shape, stride=1, padding=((0, 0),),
                 output_padding=0, groups=1):
            spec = ConvSpec.transpose(input_shape, weight_shape, stride=stride,
                                      padding=padding, output_padding=output_padding,
                                      groups=groups)
            args = dict(input_shape=input_shape, weight_shape=weight_shape, stride=stride,
                        padding=padding, output_padding=output_padding, groups=groups)
            return make("toy", "toy.ConvTranspose", args, batch=input_shape[0],
                        c_in=input_shape[1], c_out=weight_shape[1] * groups,
                        kernel=weight_shape[2:], stride=spec.stride, dilation=spec.dilation,
                        groups=groups, size=input_shape[2:], wins=windows(spec),
                        layout=Layout.plain(spec.ndim))

        def write(self, spec, options):
            if any(d > 1 for d in spec.dilation):
                raise tconv.ConvSpecError("toy.ConvTranspose has no dilation")
            return dict(input_shape=spec.output_shape, weight_shape=spec.weight_shape,
                        stride=spec.stride, padding=spec.padding,
                        output_padding=spec.output_padding, groups=spec.groups)

        def from_flags(self, *, size, k, in_channels, out_channels, stride, padding,
                       output_padding, groups, batch, **_):
            nd = len(size)
            return self.read((batch, in_channels, *size),
                             (in_channels, out_channels // groups, *k), stride,
                             [(padding or 0, padding or 0)] * nd, output_padding or 0, groups)

        def code(self, layer, crop, bias, runnable=False):
            kwargs = {k: v for k, v in layer.kwargs.items() if k != "weight_shape"}
            add = " + bias.reshape((1, -1) + (1,) * (x.ndim - 2))" if bias else ""
            return (["import tconv"],
                    ["def layer(x):",
                     f"    return tconv.conv_transpose(x, weight, **{kwargs!r}){add}"],
                    ["return layer(x)"])

    yield frameworks.get("toy")
    Framework._classes.pop("toy")


def test_the_registry_lists_it_and_its_alias(toy):
    assert "toy" in frameworks.with_ways() and "toy" in frameworks.converters()
    assert frameworks.get("toyfw") is toy and frameworks.available("toy")
    assert frameworks.parse("toy,torch")[0] == "toy"
    assert "toy" in convert.FRAMEWORKS


def test_verify_has_its_rows(toy):
    spec = ConvSpec.transpose((2, 4, 3, 3), (4, 3, 3, 2), stride=2, padding=((1, 0), (0, 1)),
                              groups=2)
    _, w, g = arrays_for(spec, 0, np.float32)
    rows = {row.name: row for row in verify(spec, w, g, backends=["toy"]).rows}
    assert rows["toy scatter"].status == "PASS"
    assert rows["toy no-groups"].status == "N/A"
    assert_exact("conv_transpose", g, w, spec, rows["toy scatter"].result, label="toy")


def test_the_cli_verify_and_sweep_take_it(toy):
    result = CliRunner().invoke(app, ["verify", "--backends", "toy", "--json"])
    assert result.exit_code == 0, result.output
    sources = {row["name"]: row["status"] for row in json.loads(result.stdout)["rows"]
               if row["source"] == "toy"}
    assert sources == {"toy scatter": "PASS", "toy no-groups": "PASS"}
    report = sweep(12, seed=3, backends=["toy"], dtype="float64")
    assert report.passed
    assert report.tallies["toy scatter"]["PASS"] == 12
    assert report.tallies["toy no-groups"]["PASS"] + report.tallies["toy no-groups"]["N/A"] == 12


def test_convert_reads_writes_and_runs_it(toy):
    layer = convert.read("torch", input_shape=(1, 4, 5, 5), in_channels=4, out_channels=6,
                         kernel_size=3, stride=2, padding=1, output_padding=1, groups=2)
    there = convert.convert(layer, "toy")
    assert there.exact and there.target.framework == "toy"
    assert there.target.spec == layer.spec
    check = convert.check(there)
    assert check.passed, check
    back = convert.convert(there.target, "torch")
    direct = convert.convert(layer, "torch").target.kwargs
    assert back.exact and back.target.kwargs == {**direct, "bias": False}   # toy has no bias
    flagged = convert.from_flags("toy", input_size=(4,), kernel=3, stride=2, padding=1,
                                 output_padding=1)
    assert [d.full for d in spec_dims(flagged.spec)] == [9]
    with pytest.raises(tconv.ConvSpecError, match="toy.ConvTranspose has no dilation"):
        convert.convert(convert.from_flags("torch", input_size=(4,), kernel=3, dilation=2),
                        "toy")
