"""Check a user's own transposed convolution (or input gradient) against exact arithmetic.

The target has PyTorch's signature, for any number of spatial dims:

* ``torch-conv-transpose``: ``fn(input, weight, bias=None, stride=1, padding=0,
  output_padding=0, groups=1, dilation=1)`` as ``F.conv_transpose2d``;
* ``torch-input-grad``: ``fn(input_size, weight, grad_output, stride=1, padding=0, dilation=1,
  groups=1)`` as ``torch.nn.grad.conv2d_input``.

Stride, padding, output_padding and dilation are passed as tuples (one per spatial dim), the
arrays as NumPy arrays or torch tensors, positionally. The specs start with the corners where real
backends broke (groups with several output channels per group, dilation with stride and
output_padding, stride larger than the kernel, 1-d and 3-d) and continue with random draws; the
first failure is shrunk to a minimal spec.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from . import exact, flags
from .spec import ConvSpec, ConvSpecError
from .strategies import arrays_for
from .sweep import draw_specs, shrink
from .verify import error_bound

APIS = ("torch-conv-transpose", "torch-input-grad")
ARRAYS = ("numpy", "torch")


def load_target(target: str) -> Callable:
    """``module:function`` or ``path/to/file.py:function`` -> the function."""
    where, sep, name = target.rpartition(":")
    if not sep or not where or not name:
        raise ConvSpecError(f"TARGET must be module:function or path/to/file.py:function, "
                            f"got {target!r}")
    try:
        if where.endswith(".py") or "/" in where:
            path = Path(where)
            if not path.is_file():
                raise ConvSpecError(f"TARGET file {where!r} does not exist")
            spec = importlib.util.spec_from_file_location(f"_tconv_target_{path.stem}", path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(where)
    except ConvSpecError:
        raise
    except Exception as e:  # the user's module failed to import: say so in one line
        raise ConvSpecError(f"TARGET {target!r} could not be imported: "
                            f"{type(e).__name__}: {e}") from None
    fn = getattr(module, name, None)
    if not callable(fn):
        raise ConvSpecError(f"TARGET {target!r}: {where} has no function {name!r}")
    return fn


def expressible(spec: ConvSpec, api: str) -> bool:
    """PyTorch's signatures take symmetric padding; the input-gradient one derives
    output_padding from the input size, so it must stay below the stride."""
    if spec.symmetric_padding is None:
        return False
    if api == "torch-input-grad":
        return not spec.output_padding_exceeds_stride
    return True


def call(fn: Callable, api: str, spec: ConvSpec, w: np.ndarray, g: np.ndarray,
         arrays: str) -> np.ndarray:
    if arrays == "torch":
        import torch
        w, g = torch.from_numpy(w), torch.from_numpy(g)
    if api == "torch-conv-transpose":
        out = fn(g, w, None, spec.stride, spec.symmetric_padding, spec.output_padding,
                 spec.groups, spec.dilation)
    else:
        out = fn(spec.input_shape, w, g, spec.stride, spec.symmetric_padding, spec.dilation,
                 spec.groups)
    if hasattr(out, "detach"):
        out = out.detach().cpu().numpy()
    return np.asarray(out)


@dataclass
class Outcome:
    """How the target did on one spec."""

    spec: ConvSpec
    passed: bool
    message: str = ""
    seed: int = 0


def check_spec(fn: Callable, api: str, spec: ConvSpec, *, dtype="float64", seed: int = 0,
               arrays: str = "numpy") -> Outcome:
    """Run the target on one spec and compare with the exact result: shape, then cells."""
    _, w, g = arrays_for(spec, seed, dtype)
    try:
        got = call(fn, api, spec, w, g, arrays)
    except Exception as e:  # the target's own failure is a finding, not a crash of tconv
        return Outcome(spec, False, f"raised {type(e).__name__}: {e}", seed)
    if got.shape != spec.input_shape:
        return Outcome(spec, False, f"shape {got.shape}, expected {spec.input_shape}", seed)
    truth = exact.conv_transpose(g, w, spec)
    if np.dtype(dtype).kind in "iu":
        truth = exact.wrap(truth, dtype)
    bound = error_bound(g, w, spec, truth, dtype)
    diff = np.abs(got.astype(np.float64) - np.asarray(truth, dtype=np.float64))
    bad = np.argwhere(~(diff <= bound))
    if not len(bad):
        return Outcome(spec, True, seed=seed)
    cells = "; ".join(f"{tuple(int(i) for i in idx)}: expected {float(truth[tuple(idx)]):.6g}, "
                      f"got {float(got[tuple(idx)]):.6g}" for idx in bad[:5])
    return Outcome(spec, False, f"{len(bad)} of {got.size} cells differ (bound "
                                f"{float(bound.max(initial=0)):.3g}); first: {cells}", seed)


def corner_specs(dims=(1, 2, 3)) -> list[ConvSpec]:
    """The corners where real backends broke, in each requested number of dims."""
    corners = []
    for nd in dims:
        def make(y_c, w_shape, k, **kw):
            return ConvSpec.transpose((1, y_c) + (3,) * nd, w_shape + (k,) * nd, **kw)
        corners += [
            make(4, (4, 3), 3, stride=2, padding=1, groups=2),              # C_out/g > 1
            make(2, (2, 2), 3, stride=2, padding=1, dilation=2, output_padding=1),
            make(2, (2, 1), 3, stride=2, dilation=3, output_padding=2),     # op >= stride
            make(1, (1, 2), 2, stride=3, padding=0),                         # stride > kernel
            make(2, (2, 1), 3, stride=2, padding=2, output_padding=1),      # padding crops
        ]
    return corners


@dataclass
class CheckReport:
    api: str
    checked: int
    first_failure: Outcome | None
    minimal: Outcome | None
    command: str = ""

    @property
    def passed(self) -> bool:
        return self.first_failure is None

    def to_dict(self) -> dict:
        def outcome(o):
            return None if o is None else {"spec": o.spec.describe(), "message": o.message}
        return {"api": self.api, "checked": self.checked, "passed": self.passed,
                "first_failure": outcome(self.first_failure),
                "minimal_failure": outcome(self.minimal), "repro": self.command or None}


def check(fn: Callable, target: str, api: str, *, count: int = 200, seed: int = 0,
          dims=(1, 2, 3), dtype="float64", arrays: str = "numpy",
          progress: Callable[[int, int], None] | None = None) -> CheckReport:
    """Corners, then random specs, until ``count`` are checked or one fails; then shrink it."""
    specs = [s for s in corner_specs(dims) + draw_specs(count, seed, dims, symmetric=True)
             if expressible(s, api)][:count]
    failure = None
    for i, spec in enumerate(specs):
        outcome = check_spec(fn, api, spec, dtype=dtype, seed=seed + i, arrays=arrays)
        if progress:
            progress(i + 1, len(specs))
        if not outcome.passed:
            failure = outcome
            break
    if failure is None:
        return CheckReport(api, len(specs), None, None)
    checked = i + 1

    def fails(s: ConvSpec) -> bool:
        return expressible(s, api) and not check_spec(fn, api, s, dtype=dtype, seed=seed,
                                                      arrays=arrays).passed

    minimal_spec = shrink(failure.spec, fails)
    minimal = check_spec(fn, api, minimal_spec, dtype=dtype, seed=seed, arrays=arrays)
    if minimal.passed:  # the failure depended on the data of the first draw: keep that one
        minimal = failure
    command = flags.command("tconv", "check", target, "--api", api,
                            *flags.spec_flags(minimal.spec), "--dtype", np.dtype(dtype).name,
                            "--arrays", arrays, "--seed", str(minimal.seed))
    return CheckReport(api, checked, failure, minimal, command)
