"""The tables of docs/performance.md, from one ``tconv bench --json`` run.

    tconv bench --repeats 7 --json > bench.json
    python benchmarks/tables.py bench.json          # markdown on stdout

(``make bench`` does both.) Nothing here times anything: the numbers are the bench's, and only
its same-run ratios mean anything. The first line is the run's hardware (CPU, SIMD level,
NumPy's BLAS, its kernel and threads, PyTorch's oneDNN ISA), so that tables of runs on
different machines can be laid side by side.
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from tconv import bench
from tconv.hardware import one_line
from tconv.methods.auto import choose


def _ratio(row) -> str:
    return "" if row is None or row["ratio_to_torch"] is None else f"{row['ratio_to_torch']:.2f}"


def _min_ratio(row) -> str:
    value = None if row is None else row.get("min_ratio_to_torch")
    return "" if value is None else f"{value:.2f}"


def _ms(row) -> str:
    return "" if row is None else f"{row['median_ms']:.1f}"


def _bound(row) -> str:
    """What the time of ``auto`` goes to: fast_native's passes (and its kernel's rate as a share
    of NumPy's square GEMM), or a NumPy method's rate as a share of that GEMM."""
    if row is None:
        return ""
    parts = row.get("parts")
    if parts:
        rate = parts.get("kernel_of_gemm")
        return (f"kernel {parts['kernel']:.0%}" + (f" ({rate:.0%} of GEMM)" if rate else "")
                + f", layout {parts['layout']:.0%}, other {parts['other']:.0%}")
    return f"GEMM-rate share {row['gemm_share']:.0%}"


def _runs(row, spec, dt, op) -> str:
    if row is None:
        return ""
    return row.get("runs") or choose("conv_transpose" if op == "input_grad" else op, spec,
                                     np.dtype(dt))


def _memory(row, key) -> str:
    """Extra memory beyond the result, in MB and over the result (or the largest array)."""
    if row is None or row.get(key) is None:
        return ""
    if "output_bytes" in row:
        beyond, ratio = row["peak_extra_mb"] - row["output_bytes"] / 2**20, row[key]
    else:   # reports before the result's size was recorded: their peak included the result
        out = row["peak_extra_mb"] / row["extra_over_output"]
        beyond = row["peak_extra_mb"] - out
        ratio = beyond / out if key == "extra_over_output" else row[key] - (
            row[key] / row["extra_over_output"])
    return f"{max(beyond, 0):.0f} MB = {max(ratio, 0):.2f}x"


def hardware_line(report: dict) -> str:
    hw = report.get("hardware")
    return "Hardware: " + (one_line(hw) if hw else "not recorded in this report")


def tables(report: dict) -> str:
    rows = {(r["layer"], r["op"], r["dtype"], r["candidate"]): r for r in report["timings"]}
    specs = {ly.name: ly.spec for ly in bench.layers() + bench.layers(quick=True)}
    specs = {name: specs[name] for name in dict.fromkeys(r["layer"] for r in report["timings"])}
    present = [(name, dt) for name in specs for dt in ("float32", "float64")
               if (name, "input_grad", dt, "tconv auto") in rows]
    gemm = report.get("gemm_gflops", {})
    out = [hardware_line(report), "",
           "NumPy GEMM in this run: " + ", ".join(f"{dt} {v:.0f} GFLOP/s" for dt, v in
                                                  gemm.items()), "",
           "| layer | dtype | auto runs | auto ms | torch ms | auto / torch | fastest rounds | "
           "fast_gemm | "
           "fast_polyphase | fast_polyphase_cf | fast_native | jax vjp | auto: where the time "
           "goes | auto extra memory / output |",
           "|---" * 14 + "|"]
    for name, dt in present:
        get = lambda c: rows.get((name, "input_grad", dt, c))  # noqa: E731
        auto, torch = get("tconv auto"), get(bench.REFERENCE["input_grad"])
        out.append(
            f"| {name} | {dt} | {_runs(auto, specs[name], dt, 'input_grad')} | {_ms(auto)} | "
            f"{_ms(torch)} | **{_ratio(auto)}** | {_min_ratio(auto)} | "
            f"{_ratio(get('tconv fast_gemm'))} | "
            f"{_ratio(get('tconv fast_polyphase'))} | {_ratio(get('tconv fast_polyphase_cf'))} | "
            f"{_ratio(get('tconv fast_native'))} | {_ratio(get('jax vjp (jit)'))} | "
            f"{_bound(auto)} | {_memory(auto, 'extra_over_output')} |")
    out += ["", "| layer | dtype | op | auto runs | auto ms | torch ms | auto / torch | "
            "fastest rounds | im2col / torch | fast_native / torch | direct / torch | "
            "jax / torch | auto: where the time goes | auto memory beyond the result, / largest "
            "array |",
            "|---" * 14 + "|"]
    for name in specs:
        for dt in ("float32", "float64"):
            for op, jax in (("conv", "jax conv (jit)"), ("weight_grad", "jax vjp (jit)")):
                get = lambda c: rows.get((name, op, dt, c))  # noqa: E731
                auto, torch = get("tconv auto"), get(bench.REFERENCE[op])
                if auto is None:
                    continue
                out.append(
                    f"| {name} | {dt} | {op} | {_runs(auto, specs[name], dt, op)} | "
                    f"{_ms(auto)} | {_ms(torch)} | **{_ratio(auto)}** | {_min_ratio(auto)} | "
                    f"{_ratio(get('tconv im2col'))} | {_ratio(get('tconv fast_native'))} | "
                    f"{_ratio(get('tconv direct'))} | {_ratio(get(jax))} | {_bound(auto)} | "
                    f"{_memory(auto, 'extra_over_largest')} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", help="the output of `tconv bench --json`")
    args = parser.parse_args()
    with open(args.report) as f:
        print(tables(json.load(f)))


if __name__ == "__main__":
    main()
