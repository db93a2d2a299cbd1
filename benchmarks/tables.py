"""The tables of docs/performance.md, from one ``tconv bench --json`` run.

    tconv bench --repeats 7 --json > bench.json
    python benchmarks/tables.py bench.json          # markdown on stdout

(``make bench`` does both.) Nothing here times anything: the numbers are the bench's, and only
its same-run ratios mean anything.
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from tconv import bench
from tconv.methods.auto import choose


def _ratio(row) -> str:
    return "" if row is None or row["ratio_to_torch"] is None else f"{row['ratio_to_torch']:.2f}"


def _ms(row) -> str:
    return "" if row is None else f"{row['median_ms']:.1f}"


def tables(report: dict) -> str:
    rows = {(r["layer"], r["op"], r["dtype"], r["candidate"]): r for r in report["timings"]}
    specs = {ly.name: ly.spec for ly in bench.layers() + bench.layers(quick=True)}
    specs = {name: specs[name] for name in dict.fromkeys(r["layer"] for r in report["timings"])}
    present = [(name, dt) for name in specs for dt in ("float32", "float64")
               if (name, "input_grad", dt, "tconv auto") in rows]
    out = ["| layer | dtype | auto runs | auto ms | torch ms | auto / torch | fast_gemm | "
           "fast_polyphase | fast_polyphase_cf | jax vjp | auto, share of GEMM | auto, extra MB |",
           "|---" * 12 + "|"]
    for name, dt in present:
        get = lambda c: rows.get((name, "input_grad", dt, c))  # noqa: E731
        auto, torch = get("tconv auto"), get(bench.REFERENCE["input_grad"])
        out.append(
            f"| {name} | {dt} | {choose('conv_transpose', specs[name], np.dtype(dt))} | {_ms(auto)} | "
            f"{_ms(torch)} | **{_ratio(auto)}** | {_ratio(get('tconv fast_gemm'))} | "
            f"{_ratio(get('tconv fast_polyphase'))} | {_ratio(get('tconv fast_polyphase_cf'))} | "
            f"{_ratio(get('jax vjp (jit)'))} | {auto['gemm_share']:.0%} | "
            f"{auto['peak_extra_mb']:.0f} |")
    out += ["", "| layer | dtype | conv: auto ms | torch ms | auto / torch | direct / torch | "
            "jax / torch | weight_grad: auto ms | torch nn.grad ms | auto / torch | "
            "direct / torch | jax / torch | extra MB (conv, weight_grad) |", "|---" * 13 + "|"]
    for name in specs:
        for dt in ("float32", "float64"):
            if not any((name, op, dt, "tconv auto") in rows for op in ("conv", "weight_grad")):
                continue
            cells, memory = [], []
            for op, jax in (("conv", "jax conv (jit)"), ("weight_grad", "jax vjp (jit)")):
                get = lambda c: rows.get((name, op, dt, c))  # noqa: E731
                auto, torch = get("tconv auto"), get(bench.REFERENCE[op])
                cells += [_ms(auto), _ms(torch),
                          f"**{_ratio(auto)}**", _ratio(get("tconv direct")), _ratio(get(jax))]
                memory.append("" if auto is None else f"{auto['peak_extra_mb']:.0f}")
            out.append(f"| {name} | {dt} | " + " | ".join(cells) + f" | {', '.join(memory)} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", help="the output of `tconv bench --json`")
    args = parser.parse_args()
    with open(args.report) as f:
        print(tables(json.load(f)))


if __name__ == "__main__":
    main()
