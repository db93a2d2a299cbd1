"""``tconv serve``: the explainer page as a local playground (the server is
:mod:`tconv.explain.serve`)."""
from __future__ import annotations

import sys

import typer

from .common import fail


def command(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind. The default is "
                             "reachable from this machine only."),
    port: int = typer.Option(8765, "--port", help="Port; 0 picks any free port (the URL is "
                             "printed)."),
    verbose: bool = typer.Option(False, "--verbose", help="Log every request to stderr."),
) -> None:
    """A local playground: a form for the spec, and the interactive explainer page of it.

    Change the dims, kernel, stride, padding (asymmetric low:high, 'same', 'valid'),
    dilation, output_padding, groups or channels, and the server computes the page again with
    tconv's engine; an invalid spec shows tconv's message next to the field. Requests and
    specs are size-limited. Ctrl-C stops the server.

    Example: tconv serve --port 0
    """
    from ..explain import serve

    if not 0 <= port <= 65535:
        fail(f"--port must be between 0 and 65535, got {port}")
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"tconv serve: binding {host}: other machines may reach this server",
              file=sys.stderr)
    try:
        serve.serve(host, port, verbose=verbose, announce=lambda line: print(line, flush=True))
    except OSError as e:
        fail(f"cannot serve on {host}:{port}: {e.strerror or e}")
