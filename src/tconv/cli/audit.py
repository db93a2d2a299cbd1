"""``tconv audit``: a model's transposed convolutions, each in every framework's words, with the
output sizes that collide, the overlap pattern and the known bugs it meets."""
from __future__ import annotations

import json
from typing import Optional

import typer

from .. import flags
from .common import JSON, backends_option, new_console, user_errors


def command(
    model: str = typer.Argument(..., metavar="MODEL", help="A model file: ONNX (.onnx), Keras "
                                "(.keras) or a torch module saved whole (.pt: unpickled, only "
                                "files you trust)."),
    source: Optional[str] = typer.Option(None, "--from", help="The model's framework, if its "
                                         "file name does not say it."),
    model_input: Optional[str] = typer.Option(
        None, "--model-input", help="The model's input shape in its layout (1,100,1,1); needed "
        "for torch, optional for ONNX (its dynamic dims are 1)."),
    backends: Optional[str] = backends_option(),
    seed: int = typer.Option(0, "--seed", help="Seed of the data the frameworks' ways run on."),
    as_json: bool = JSON,
) -> None:
    """List a model's transposed convolutions and what to watch for when porting each.

    For every transposed convolution: the layer in every framework's words (and the crop it
    needs, or why none expresses it), the output sizes that collide (a strided layer maps
    several output sizes to one input size: output_padding or output_size picks one), the
    overlap pattern of its kernel taps (uneven: the checkerboard risk), and each runtime's known
    bug or refusal for it, found by running the frameworks' ways on its spec.

    Example: tconv audit generator.onnx --json
    """
    from .. import frameworks
    from ..audit import audit

    with user_errors(as_json):
        shape = None if model_input is None else flags.ints("--model-input", model_input)
        names = frameworks.parse(backends)
        from .convert import _quiet_xla

        _quiet_xla()
        result = audit(model, source=source, input_shape=shape, frameworks=names, seed=seed)
    if as_json:
        print(json.dumps({"model": model, "layers": [a.to_dict() for a in result]}, indent=2))
        return
    _print(model, result)


def _print(model: str, result) -> None:
    from rich.table import Table

    out = new_console()
    out.print(f"[bold]tconv audit[/bold] {model}: {len(result)} transposed convolutions",
              highlight=False)
    for layer in result:
        if not layer.call:                 # not read: the reason
            out.print(f"{layer.name}: {layer.describe}", highlight=False)
            continue
        table = Table(title=f"{layer.name}: {layer.describe}", title_justify="left",
                      show_lines=False)
        table.add_column("framework")
        table.add_column("layer")
        table.add_column("crop")
        table.add_row("tconv", layer.tconv, "")
        for name, words in layer.words.items():
            if words["layer"] is None:
                table.add_row(name, f"[yellow]none: {words['refused']}[/]", "")
            else:
                table.add_row(name, words["layer"],
                              "exact" if words["exact"] else str(words["crop"]))
        out.print(table)
        out.print(f"  input {layer.input_shape} -> output {layer.output_shape}", highlight=False)
        for d in layer.sizes:
            sizes = ", ".join(str(n) for n in d["sizes"])
            verdict = ("[bold]collide[/]: a port that drops output_padding/output_size may "
                       "give another" if len(d["sizes"]) > 1 else "one size")
            out.print(f"  sizes    dim {d['dim']}: outputs {sizes} all have input {d['input']} "
                      f"(this layer: {d['this']}); {verdict}", highlight=False)
        for d in layer.overlap:
            pattern = " ".join(map(str, d["pattern"]))
            verdict = "even" if d["even"] else "[bold]uneven: checkerboard risk[/]"
            out.print(f"  overlap  dim {d['dim']}: kernel {d['kernel']}, stride {d['stride']}: "
                      f"taps per cell {pattern}, {verdict}", highlight=False)
        if not layer.bugs:
            out.print("  bugs     none of the known ones", highlight=False)
        for bug in layer.bugs:
            out.print(f"  bug      {bug['way']} ({bug['kind']}): {bug['reason']}",
                      highlight=False)
