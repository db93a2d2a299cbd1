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

What the target gets and what counts against it. The expected result and its rounding bound are
computed first, from arrays the target never sees; the target gets copies, so it can neither
change the expectation nor hide a fault by writing to its arguments, and an argument it changes
is a failure of its own, named. A result that is not an array of numbers (``None``, strings,
objects), has the wrong shape or differs beyond the bound fails; so does a raise of any kind
(``SystemExit`` included). Run through :mod:`tconv.engine` in a sandbox process, a call that
takes longer than the timeout fails as hanging, and a target that kills its process
(``os._exit``, ``abort``, a signal) twice fails as crashing; the check goes on either way.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import engine
from . import exact, flags
from .spec import ConvSpec, ConvSpecError
from .strategies import arrays_for
from .sweep import draw_specs, shrink
from .verify import error_bound

APIS = ("torch-conv-transpose", "torch-input-grad")
ARRAYS = ("numpy", "torch")


def load_target(target: str) -> Callable:
    """``module:function`` or ``path/to/file.py:function`` -> the function (a module is looked
    for in the current directory too, as ``python -m`` does).

    Anything the import does wrong (a raise, ``sys.exit``) is a :class:`ConvSpecError` naming
    the target; only Ctrl-C goes through.
    """
    where, sep, name = target.rpartition(":")
    if not sep or not where or not name:
        raise ConvSpecError(f"TARGET must be module:function or path/to/file.py:function, "
                            f"got {target!r}", "TARGET")
    try:
        if where.endswith(".py") or "/" in where:
            path = Path(where)
            if not path.is_file():
                raise ConvSpecError(f"TARGET file {where!r} does not exist", "TARGET")
            spec = importlib.util.spec_from_file_location(f"_tconv_target_{path.stem}", path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
        else:
            if os.getcwd() not in sys.path and "" not in sys.path:
                sys.path.insert(0, os.getcwd())   # as `python -m` would: modules of this dir
            module = importlib.import_module(where)
    except (ConvSpecError, KeyboardInterrupt):
        raise
    except BaseException as e:  # noqa: BLE001 - the user's module failed to import: one line
        raise ConvSpecError(f"TARGET {target!r} could not be imported: "
                            f"{engine.describe_exception(e)}", "TARGET") from None
    fn = getattr(module, name, None)
    if not callable(fn):
        raise ConvSpecError(f"TARGET {target!r}: {where} has no function {name!r}", "TARGET")
    return fn


def expressible(spec: ConvSpec, api: str) -> bool:
    """PyTorch's signatures take symmetric padding; the input-gradient one derives
    output_padding from the input size, so it must stay below the stride."""
    if spec.symmetric_padding is None:
        return False
    if api == "torch-input-grad":
        return not spec.output_padding_exceeds_stride
    return True


#: The names of the array arguments of each API, (upstream gradient, weight).
ARGUMENTS = {"torch-conv-transpose": ("input", "weight"),
             "torch-input-grad": ("grad_output", "weight")}


def call(fn: Callable, api: str, spec: ConvSpec, w: np.ndarray, g: np.ndarray,
         arrays: str):
    """The target on ``w`` and ``g`` (passed as they are, or as torch tensors sharing their
    memory); its return value as it came."""
    if arrays == "torch":
        import torch
        w, g = torch.from_numpy(w), torch.from_numpy(g)
    if api == "torch-conv-transpose":
        return fn(g, w, None, spec.stride, spec.symmetric_padding, spec.output_padding,
                  spec.groups, spec.dilation)
    return fn(spec.input_shape, w, g, spec.stride, spec.symmetric_padding, spec.dilation,
              spec.groups)


def as_numbers(out, expected_shape) -> tuple[np.ndarray | None, str]:
    """The target's return value as a NumPy array of numbers, or None and why it is not one."""
    wanted = f"expected an array of numbers of shape {expected_shape}"
    if out is None:
        return None, f"returned None, {wanted}"
    try:
        if hasattr(out, "detach"):
            out = out.detach().cpu().numpy()
        got = np.asarray(out)
    except Exception as e:  # noqa: BLE001 - ragged lists, objects numpy cannot read
        return None, (f"returned a {type(out).__name__} that is not an array "
                      f"({engine.describe_exception(e)}), {wanted}")
    if got.dtype.kind not in "iuf":
        return None, (f"returned a {type(out).__name__} of dtype {got.dtype} and shape "
                      f"{got.shape}, {wanted}")
    return got, ""


@dataclass
class Outcome:
    """How the target did on one spec; ``kind`` names the failure: ``cells``, ``shape``,
    ``result`` (not an array of numbers), ``raised``, ``modified`` (wrote to an argument),
    ``timeout``, ``crash``; ``pass`` when it passed."""

    spec: ConvSpec
    passed: bool
    message: str = ""
    seed: int = 0
    kind: str = "pass"


def _changed(name: str, before: np.ndarray, after: np.ndarray) -> str:
    if before.shape != after.shape or before.dtype != after.dtype:
        return f"{name} (now {after.dtype} {after.shape})"
    same = before == after
    if before.dtype.kind == "f":
        same |= np.isnan(before) & np.isnan(after)
    changed = int(np.count_nonzero(~same))
    return f"{name} ({changed} of {before.size} cells changed)" if changed else ""


def check_spec(fn: Callable, api: str, spec: ConvSpec, *, dtype="float64", seed: int = 0,
               arrays: str = "numpy") -> Outcome:
    """Run the target on one spec and compare with the exact result: shape, then cells.

    The expectation comes first, the target gets copies, and the copies are compared with the
    originals afterwards.
    """
    _, w, g = arrays_for(spec, seed, dtype)
    truth = exact.conv_transpose(g, w, spec)
    if np.dtype(dtype).kind in "iu":
        truth = exact.wrap(truth, dtype)
    bound = error_bound(g, w, spec, truth, dtype)
    w_arg, g_arg = w.copy(), g.copy()
    try:
        out = call(fn, api, spec, w_arg, g_arg, arrays)
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # noqa: BLE001 - the target's own failure (SystemExit too)
        return Outcome(spec, False, f"raised {engine.describe_exception(e)}", seed, "raised")
    g_name, w_name = ARGUMENTS[api]
    changed = [c for c in (_changed(g_name, g, g_arg), _changed(w_name, w, w_arg)) if c]
    got, why = as_numbers(out, spec.input_shape)
    if got is None:
        verdict, kind = why, "result"
    elif got.shape != spec.input_shape:
        verdict, kind = f"shape {got.shape}, expected {spec.input_shape}", "shape"
    else:
        diff = np.abs(got.astype(np.float64) - np.asarray(truth, dtype=np.float64))
        bad = np.argwhere(~(diff <= bound))
        if not len(bad):
            verdict, kind = "", "pass"
        else:
            cells = "; ".join(f"{tuple(int(i) for i in idx)}: expected "
                              f"{float(truth[tuple(idx)]):.6g}, got {float(got[tuple(idx)]):.6g}"
                              for idx in bad[:5])
            verdict, kind = (f"{len(bad)} of {got.size} cells differ (bound "
                             f"{float(bound.max(initial=0)):.3g}); first: {cells}"), "cells"
    if changed:
        result = "its result is right" if kind == "pass" else f"its result: {verdict}"
        return Outcome(spec, False, f"modified its argument {' and '.join(changed)} in place; "
                                    f"{result}", seed, "modified")
    return Outcome(spec, kind == "pass", verdict, seed, kind)


class CheckJob(engine.Job):
    """:func:`check_spec` for the engine: the target is imported once per process (from
    ``target``, or ``fn`` itself when given); an item is ``(spec, seed)``."""

    def __init__(self, target: str, api: str, dtype: str, arrays: str,
                 fn: Callable | None = None):
        self.target, self.api, self.dtype, self.arrays, self.fn = target, api, dtype, arrays, fn

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_loaded"}

    def setup(self) -> None:
        self._loaded = self.fn if self.fn is not None else load_target(self.target)

    def run(self, item) -> tuple[bool, str, str]:
        spec, seed = item
        o = check_spec(self._loaded, self.api, spec, dtype=self.dtype, seed=seed,
                       arrays=self.arrays)
        return o.passed, o.kind, o.message


def _from_engine(spec: ConvSpec, seed: int, o: engine.Outcome) -> Outcome:
    if o.status == engine.OK:
        passed, kind, message = o.value
        return Outcome(spec, passed, message, seed, kind)
    if o.status == engine.TIMEOUT:
        return Outcome(spec, False, f"hangs: {o.message} (--timeout)", seed, "timeout")
    if o.status == engine.CRASH:
        return Outcome(spec, False, o.message, seed, "crash")
    return Outcome(spec, False, f"raised {o.message}", seed, "raised")


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
    failures: Counter = field(default_factory=Counter)   # failed specs per kind
    resumed: int = 0

    @property
    def passed(self) -> bool:
        return self.first_failure is None

    def to_dict(self) -> dict:
        def outcome(o):
            return None if o is None else {"spec": o.spec.describe(), "kind": o.kind,
                                           "message": o.message}
        return {"api": self.api, "checked": self.checked, "passed": self.passed,
                "failed": sum(self.failures.values()), "failure_kinds": dict(self.failures),
                "resumed": self.resumed, "first_failure": outcome(self.first_failure),
                "minimal_failure": outcome(self.minimal), "repro": self.command or None}


def check_params(target: str, api: str, count: int, seed: int, dims, dtype, arrays) -> dict:
    """What a checkpoint of ``check`` must agree on to be resumed."""
    import hypothesis

    return {"target": target, "api": api, "count": count, "seed": seed, "dims": list(dims),
            "dtype": np.dtype(dtype).name, "arrays": arrays,
            "hypothesis": hypothesis.__version__}


def _target_error(target: str, e: engine.SetupError) -> ConvSpecError:
    message = str(e)
    if message.startswith("TARGET"):
        return ConvSpecError(message, "TARGET")
    return ConvSpecError(f"TARGET {target!r} could not be imported: {message}", "TARGET")


def check_one(fn: Callable | None, target: str, api: str, spec: ConvSpec, *, dtype="float64",
              seed: int = 0, arrays: str = "numpy", timeout: float | None = None,
              sandbox: bool = False, workers: int = 1, scheduler: str | None = None) -> Outcome:
    """:func:`check_spec` through the engine (as :func:`check` runs it): one spec."""
    job = CheckJob(target, api, np.dtype(dtype).name, arrays, fn)
    try:
        with engine.Engine(workers=workers, scheduler=scheduler, timeout=timeout,
                            mode=engine.mode_for(workers, scheduler, timeout, sandbox)
                            ) as pool:
            return _from_engine(spec, seed, pool.call(job, (spec, seed)))
    except engine.SetupError as e:
        raise _target_error(target, e) from None


def check(fn: Callable | None, target: str, api: str, *, count: int = 200, seed: int = 0,
          dims=(1, 2, 3), dtype="float64", arrays: str = "numpy",
          progress: Callable[[int, int], None] | None = None, workers: int = 1,
          scheduler: str | None = None, timeout: float | None = None,
          sandbox: bool = False, batch_size: int | None = None, out: str | None = None,
          resume: bool = False, keep_going: bool = False) -> CheckReport:
    """Corners, then random specs, until ``count`` are checked or one fails; then shrink it.

    ``fn`` is the target itself, or None to import ``target`` where the specs run. With
    ``workers`` > 1 or a ``scheduler`` the specs run on Dask, with a ``timeout`` (seconds per
    call) or ``sandbox`` in a sandbox process, else in this process
    (:class:`tconv.engine.Engine`).
    ``keep_going`` checks every spec and counts the failures by kind instead of stopping at the
    first; either way the first failing spec (in draw order) is the one shrunk. ``out`` and
    ``resume`` stream each spec's verdict into a JSON Lines checkpoint and skip those in it.
    """
    dtype = np.dtype(dtype).name
    job = CheckJob(target, api, dtype, arrays, fn)
    checkpoint = None
    if out is not None:
        checkpoint = engine.Checkpoint(
            out, "check", check_params(target, api, count, seed, dims, dtype, arrays),
            resume=resume)
    failures: dict[int, Outcome] = {}
    kinds: Counter = Counter()
    done: set[int] = set()

    def record(i: int, outcome: Outcome) -> None:
        done.add(i)
        if not outcome.passed:
            failures[i] = outcome
            kinds[outcome.kind] += 1

    try:
        with engine.Engine(workers=workers, scheduler=scheduler, timeout=timeout,
                            batch_size=batch_size,
                            mode=engine.mode_for(workers, scheduler, timeout, sandbox)
                            ) as pool:
            pool.prepare(job)          # the target is imported meanwhile
            specs = [s for s in corner_specs(dims) + draw_specs(count, seed, dims,
                                                                symmetric=True)
                     if expressible(s, api)][:count]
            if checkpoint is not None:
                for (r,) in checkpoint.replay():
                    i = r["spec"]
                    record(i, Outcome(specs[i], r["status"] == "PASS", r["message"],
                                      r["seed"], r["kind"]))
            resumed = len(done)
            if progress:
                progress(len(done), len(specs))

            def stop_at() -> int:
                return len(specs) if keep_going or not failures else min(failures)

            def todo():   # lazily: no spec past the first failure is handed out
                for i, spec in enumerate(specs):
                    if i >= stop_at():
                        return
                    if i not in done:
                        yield i, (spec, seed + i)

            results = pool.map(job, todo(), total=len(specs) - len(done))
            for o in results:
                i = o.key
                outcome = _from_engine(specs[i], seed + i, o)
                if checkpoint is not None:
                    checkpoint.add(i, [{"spec": i, "seed": seed + i,
                                        "status": "PASS" if outcome.passed else "FAIL",
                                        "kind": outcome.kind, "message": outcome.message}
                                       | specs[i].to_dict()])
                record(i, outcome)
                if progress:
                    progress(len(done), len(specs))
                if failures and not keep_going and all(k in done for k in range(min(failures))):
                    results.close()
                    break
            report = CheckReport(api, len(done), None, None, failures=kinds, resumed=resumed)
            if not failures:
                return report
            first = failures[min(failures)]
            report.first_failure = report.minimal = first
            if first.kind == "timeout":   # each try of a hanging spec would cost the timeout
                report.minimal = Outcome(first.spec, False, first.message + "; not shrunk: "
                                         "each try waits the whole timeout", first.seed,
                                         first.kind)
            else:
                report.minimal = _shrink(pool, job, first, api)
    except engine.SetupError as e:
        raise _target_error(target, e) from None
    finally:
        if checkpoint is not None:
            checkpoint.close()
    report.command = flags.command(
        "tconv", "check", target, "--api", api, *flags.spec_flags(report.minimal.spec),
        "--dtype", dtype, "--arrays", arrays, "--seed", str(report.minimal.seed))
    return report


def _shrink(pool: engine.Engine, job: CheckJob, first: Outcome, api: str) -> Outcome:
    """The smallest spec that still fails on the data of the first failure's seed (any way of
    failing; for a crash, crashing)."""
    seed = first.seed

    def run(s: ConvSpec, retries: int = 1) -> Outcome:
        return _from_engine(s, seed, pool.call(job, (s, seed), retries=retries))

    def fails(s: ConvSpec) -> bool:
        if not expressible(s, api):
            return False
        if first.kind == "crash":   # one death is enough here: the first spec died twice
            return run(s, retries=0).kind == "crash"
        return not run(s).passed

    minimal = run(shrink(first.spec, fails))
    return first if minimal.passed else minimal  # the failure depended on the first draw's data
