"""``tconv explain``: every step of why the transposed convolution is the backward pass."""
from __future__ import annotations

import json
from typing import Optional

import typer

from .common import (DILATION, GROUPS, INPUT, INTS, JSON, KERNEL, OUTPUT_PADDING, OUT_CHANNELS,
                     PADDING, SEED, STRIDE, fail, new_console, new_directory_or_existing,
                     spec_from, user_errors, writable_file)


def command(
    input: str = INPUT, out_channels: int = OUT_CHANNELS, kernel: str = KERNEL,
    stride: str = STRIDE, padding: str = PADDING, dilation: str = DILATION,
    groups: int = GROUPS, output_padding: Optional[str] = OUTPUT_PADDING,
    ints: bool = INTS, seed: int = SEED,
    png: Optional[str] = typer.Option(
        None, "--png", help="Also write one figure per step into this directory "
                            "(01-forward.png, ...; 1-d and 2-d specs)."),
    gif: Optional[str] = typer.Option(
        None, "--gif", help="Also write an animation of both views to this file: the scatter "
                            "(each g cell stamps the kernel) and zero insertion (the flipped "
                            "kernel slides over the stretched gradient); 1-d and 2-d specs."),
    html: Optional[str] = typer.Option(
        None, "--html", help="Also write one self-contained interactive page to this file: "
                             "every step with a slider, the scatter and gather views side by "
                             "side, C and C^T; point at a cell to see what it is made of. "
                             "1-d and 2-d specs."),
    as_json: bool = JSON,
) -> None:
    """Show, step by step, why the transposed convolution is the backward pass of a convolution.

    With no options it explains the original experiment: a 1x1x4x4 input, a 3x3 kernel,
    stride 2, padding 1, and the forward output o as the upstream gradient g. The steps: the
    forward output size (the formula filled in); the input cells the stride drops and the
    output_padding that restores them; the scatter definition of the backward pass; zero
    insertion; the padding dilation*(k-1) - padding with output_padding on the high side; the
    flipped kernel with its channels swapped; the ordinary convolution that gives dL/dx; the
    sub-pixel phases; and the matrix C, whose transpose is the backward pass. Every array is
    computed by tconv's own engine.

    Example: tconv explain --ints --gif out.gif
    """
    from ..explain import drawing, story
    from ..explain import page
    from ..explain.animation import animate
    from ..explain.text import print_explanation

    with user_errors(as_json):
        # the outputs first: nothing is computed or printed for a path that cannot be written
        if png:
            new_directory_or_existing("--png", png)
        for flag, path in (("--gif", gif), ("--html", html)):
            if path:
                writable_file(flag, path)
        spec = spec_from(input, out_channels, kernel, stride, padding, dilation, groups,
                         output_padding)
        if png or gif:
            drawing.require()
            drawing.check_dims(spec.ndim)
        document = page.render(page.page_data(spec, ints=ints, seed=seed)) if html else None
        explanation = story.explain(spec, ints=ints, seed=seed)
        animation = animate(spec, explanation.g, explanation.w) if gif else None
    if as_json:
        print(json.dumps(explanation.to_dict()))
    else:
        print_explanation(new_console(), explanation)
    written = []
    if html:
        written += [write(_save_text, document, html, as_json)]
    if png:
        written += write(drawing.save_steps, explanation, png, as_json)
    if gif:
        written += [write(drawing.save_animation, animation, gif, as_json)]
    if written and not as_json:
        print("wrote " + ", ".join(map(str, written)))


def _save_text(text: str, path: str) -> str:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def write(save, what, path, as_json: bool = False):
    """Run one writer; a file that cannot be written is one line on stderr, exit 2."""
    try:
        return save(what, path)
    except OSError as e:
        fail(f"cannot write {e.filename}: {e.strerror}", as_json=as_json)
