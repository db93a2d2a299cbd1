"""The conformance table of docs/conformance.md, computed from a `tconv sweep --json` report.

    tconv sweep --count 2000 --backends all --workers 2 --json sweep.json
    python benchmarks/conformance.py sweep.json > table.md        # (or sweep.json.gz)

A sweep split into runs by seed (``--count 250 --seed 0`` ... ``--seed 7``) gives one report per
run; pass them all and they are merged (specs, tallies, reasons and times added up).

Rows are the ways of the deploy runtimes and converters; columns are the features where
transposed convolutions break. A cell counts the drawn specs that have the feature and that the
way was asked to compute: "works" when every one agreed with exact arithmetic, "wrong" with how
many differed (a wrong number, a converted model that fails, a crash, or a documented upstream
bug), the smallest such spec and the bug it is, "refuses" when the converter refused them all,
"N/A" when the way cannot express any spec with the feature. Mixed outcomes say both counts.
"""
from __future__ import annotations

import gzip
import json
import re
import sys
from collections import Counter

from tconv import frameworks
from tconv.spec import ConvSpec
from tconv.sweep import size_of, way_key

#: The backends whose ways are rows, in table order.
DEPLOY = ("openvino", "litert", "torch.onnx", "tf2onnx", "onnx2torch", "onnx2tf", "nobuco")
WRONG = ("FAIL", "CRASH", "KNOWN")
_ANSI = re.compile("\x1b\\[[0-9;]*m")   # terminal colours some converters print


def _same_mode(spec: ConvSpec) -> bool:
    from tconv.frameworks.onnx import auto_pad_forms

    return any(a["auto_pad"].startswith("SAME") for a in auto_pad_forms(spec)[0])


#: column -> predicate on a spec
FEATURES = {
    "groups, several channels per group": lambda s: s.groups > 1 and (
        s.in_channels > s.groups or s.out_channels > s.groups),
    "dilation": lambda s: max(s.dilation) > 1,
    "dilation + stride + output_padding": lambda s: max(s.dilation) > 1 and max(s.stride) > 1
    and max(s.output_padding) > 0,
    "asymmetric padding": lambda s: s.symmetric_padding is None,
    "SAME_UPPER / SAME_LOWER": _same_mode,
    "output_padding > 0 (output_shape / output_size)": lambda s: max(s.output_padding) > 0,
    "output_padding >= stride": lambda s: any(op >= st for op, st in
                                              zip(s.output_padding, s.stride)),
    "1-d": lambda s: s.ndim == 1,
    "3-d": lambda s: s.ndim == 3,
}


def _plain(spec: ConvSpec) -> bool:
    """The common layer: 2-d, no groups, no dilation, symmetric padding, no output_padding."""
    return (spec.ndim == 2 and spec.groups == 1 and max(spec.dilation) == 1
            and spec.symmetric_padding is not None and max(spec.output_padding) == 0)


COLUMNS = {"2-d plain (groups 1, dilation 1, symmetric, output_padding 0)": _plain, **FEATURES}

def _op_past_stride(s: ConvSpec) -> bool:
    return any(op >= st for op, st in zip(s.output_padding, s.stride))


def _tf2onnx_region(s: ConvSpec) -> bool:
    from tconv.frameworks.tf2onnx import _padding_bug_region

    return _padding_bug_region(s)


_ALWAYS = lambda s: True  # noqa: E731
_REPRO = "docs/reproductions/"

#: Known bugs: (way key, predicate on a failing spec, what, upstream issue or "new",
#: reproduction). The first entry whose way and predicate match names a failing spec's bug.
BUGS = [
    ("openvino opset pads", _op_past_stride,
     "ConvolutionBackpropData keeps the wrong cells when output_padding >= stride and "
     "pads_begin > 0", "new", "openvino_output_padding_past_stride.py"),
    ("openvino ONNX frontend output_shape", lambda s: s.groups > 1,
     "the ONNX frontend splits the padding derived from output_shape the other way when "
     "group > 1 (total//2 at the start)", "new", "openvino_onnx_group_output_shape.py"),
    *[(f"torch.onnx.export(dynamo={d}) -> onnxruntime", _op_past_stride,
       "the exporters write PyTorch's output_padding >= stride as is; onnxruntime refuses it",
       "known: onnxruntime#14208, onnx#3187", "torch_onnx_output_padding_past_stride.py")
      for d in (False, True)],
    ("tf2onnx(tf.nn.convNd_transpose) -> onnxruntime", _tf2onnx_region,
     "tf2onnx ignores the padding of a constant-shape Conv2DBackpropInput and derives pads from "
     "the output size (TF's 'SAME' split): explicit padding is wrong, 'VALID' with "
     "output_padding gets negative pads", "new", "tf2onnx_explicit_padding.py"),
    ("onnx2torch output_shape", _ALWAYS,
     "onnx2torch ignores output_shape: the module returns the uncropped result", "new",
     "onnx2torch_output_shape.py"),
    *[(f"onnx2tf auto_pad -> {t}", _ALWAYS,
       "onnx2tf converts SAME_UPPER / SAME_LOWER ConvTranspose to models that fail or differ",
       "new", "onnx2tf_same_upper.py") for t in ("TF", "TFLite")],
    ("nobuco(nn.ConvTransposeNd) -> Keras",
     lambda s: any(e < st for e, st in zip(s.extents, s.stride)),
     "with a kernel shorter than the stride the Keras model has input * stride cells", "new",
     "nobuco_kernel_below_stride.py"),
]


def load(path: str) -> dict:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        return json.load(f)


def merge(reports: list[dict]) -> dict:
    """Several sweep reports (runs with different seeds) as one."""
    if len(reports) == 1:
        return reports[0]
    merged = {"count": sum(r["count"] for r in reports), "dtype": reports[0]["dtype"],
              "seed": ",".join(str(r["seed"]) for r in reports),
              "seconds": sum(r["seconds"] for r in reports),
              "specs": [s for r in reports for s in r["specs"]], "ways": {}}
    for r in reports:
        for key, way in r["ways"].items():
            into = merged["ways"].setdefault(key, {"notes": Counter()})
            into["notes"].update(way.get("notes", {}))
    for way in merged["ways"].values():
        way["notes"] = dict(way["notes"].most_common(10))
    return merged


def way_rows() -> list[tuple[str, str]]:
    """(backend, way key) of every deploy way, in table order."""
    rows = []
    for name in DEPLOY:
        module = frameworks.get(name)
        for key in dict.fromkeys(way_key(w) for nd in (1, 2, 3) for w in module.way_names(nd)):
            rows.append((name, key))
    return rows


def bug_of(key: str, spec: ConvSpec):
    """``(what, issue, reproduction)`` of the known bug a failing spec is in, or None."""
    for way, test, what, issue, repro in BUGS:
        if way == key and test(spec):
            return what, issue, _REPRO + repro
    return None


def table(report: dict) -> str:
    records = [(ConvSpec.from_dict(r["spec"]), r["status"]) for r in report["specs"]]
    lines = [f"Computed by `benchmarks/conformance.py` from `tconv sweep` reports: "
             f"{report['count']} specs (seed {report['seed']}, {report['dtype']}, "
             f"{report['seconds'] / 60:.0f} min in all). Cells: specs with the feature that "
             f"the way computed; `n/m` counts out of `m`.", ""]
    header = ["way", *COLUMNS]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    bugs: dict = {}       # (what, issue, repro) or ("unexplained", key) -> smallest spec
    for backend, key in way_rows():
        cells = []
        for column, has in COLUMNS.items():
            statuses = Counter(st[key] for spec, st in records if has(spec) and key in st)
            wrong = sum(statuses[s] for s in WRONG)
            passed, refused = statuses["PASS"], statuses["REFUSED"]
            asked = wrong + passed + refused
            if asked == 0:
                cells.append("N/A" if statuses else "–")
                continue
            if wrong:
                found = []
                for spec, st in records:
                    if has(spec) and st.get(key) in WRONG:
                        bug = bug_of(key, spec) or ("unexplained", key, "")
                        if bug not in bugs or size_of(spec) < size_of(bugs[bug]):
                            bugs[bug] = spec
                        found.append(bug)
                marks = ",".join(str(list(bugs).index(b) + 1) for b in dict.fromkeys(found))
                text = f"**wrong** {wrong}/{asked} [{marks}]"
            elif refused == asked:
                text = f"refuses ({asked})"
            else:
                text = f"works ({passed})"
            if refused and refused != asked:
                text += f", refuses {refused}"
            cells.append(text)
        lines.append(f"| `{key}` | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("The wrong results, each with the smallest failing spec of the run:")
    lines.append("")
    for i, (bug, spec) in enumerate(bugs.items(), 1):
        what, issue, repro = bug
        if what == "unexplained":
            lines.append(f"{i}. `{issue}`: not explained by a known bug; smallest: "
                         f"{spec.describe()}")
        else:
            lines.append(f"{i}. {what} ({issue}; `{repro}`). Smallest: {spec.describe()}")
    lines.append("")
    lines.append("What the converters refused (the most common messages, numbers elided):")
    lines.append("")
    for backend, key in way_rows():
        notes = report["ways"].get(key, {}).get("notes", {})
        refusals = [(n, c) for n, c in notes.items() if n.startswith("refused: ")][:3]
        if refusals:
            lines.append(f"- `{key}`: " + "; ".join(
                f"{_ANSI.sub('', n[len('refused: '):])} ({c}x)"
                for n, c in refusals))
    return "\n".join(lines)


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        sys.exit("usage: python benchmarks/conformance.py SWEEP.json[.gz] [MORE.json ...]")
    print(table(merge([load(path) for path in argv])))


if __name__ == "__main__":
    main()
