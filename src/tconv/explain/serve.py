"""``tconv serve``: the explainer page as a local playground, on the standard library's HTTP server.

``GET /`` sends the page of :mod:`tconv.explain.page` with a form for the spec; the form asks
``GET /api/page?dims=2&size=4&kernel=3&...`` (or ``POST /api/page`` with the same fields,
form-encoded or as a JSON object) and the server answers with the page data of that spec,
computed by the engine, or with ``400 {"error": message, "field": name}``: the
:class:`~tconv.spec.ConvSpecError` message and the form field it names.

Every request is bounded before it costs anything: the query string (:data:`MAX_QUERY` bytes)
and the body (:data:`MAX_BODY` bytes, refused from its Content-Length before it is read), each
field (:data:`MAX_FIELD` characters), and the spec itself: its sizes are checked by
:func:`tconv.explain.page.builder.check_page_size` from the parameters alone, before any
array is made. A connection that stalls is dropped after :data:`TIMEOUT` seconds, and at most
:data:`WORKERS` pages are computed at a time. The server binds 127.0.0.1 unless told otherwise.
"""
from __future__ import annotations

import json
import sys
import threading
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from .. import flags
from ..spec import ConvSpec, ConvSpecError
from . import page
from .page import builder

__all__ = ["MAX_QUERY", "MAX_BODY", "MAX_FIELD", "FIELDS", "FieldError", "spec_from_fields",
           "page_for", "make_server", "serve"]

#: Longest query string (bytes) of a request.
MAX_QUERY = 2048
#: Longest request body (bytes).
MAX_BODY = 4096
#: Longest value of one form field (characters).
MAX_FIELD = 64
#: Seconds a connection may stall before it is dropped.
TIMEOUT = 10
#: Pages computed at the same time.
WORKERS = 2

#: The form's fields and their defaults: the original experiment.
FIELDS = {"dims": "2", "size": "4", "kernel": "3", "stride": "2", "padding": "1",
          "dilation": "1", "output_padding": "", "in_channels": "1", "out_channels": "1",
          "groups": "1", "seed": "0", "ints": "1"}
#: Words of a ConvSpecError message -> the form field it is about, earliest mention first.
_WORDS = [("output_padding", "output_padding"), ("padding", "padding"), ("kernel", "kernel"),
          ("dilat", "dilation"), ("stride", "stride"), ("groups", "groups"),
          ("weight.shape[1]", "in_channels"), ("input channels", "in_channels"),
          ("output channels", "out_channels"), ("weight.shape[0]", "out_channels"),
          ("input", "size"), ("page", "size"), ("seed", "seed")]


class FieldError(ConvSpecError):
    """A ConvSpecError about one form field."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def _field_of(message: str) -> str | None:
    """The form field a ConvSpecError message names first."""
    found = [(message.find(word), field) for word, field in _WORDS if word in message]
    return min(found)[1] if found else None


def _int(fields: dict, name: str, low: int, high: int) -> int:
    text = fields[name]
    try:
        value = int(text)
    except ValueError:
        raise FieldError(name, f"{name} must be an integer, got {text!r}") from None
    if not low <= value <= high:
        raise FieldError(name, f"{name} must be between {low} and {high}, got {value}")
    return value


def _per_dim(fields: dict, name: str, dims: int) -> str:
    """A per-dim field as the command line spells it, with one value or one per dim."""
    text = fields[name]
    if name == "padding" and text.lower() in ("same", "valid"):
        return text.lower()
    parts = text.replace("x", ",").split(",")
    if len(parts) not in (1, dims):
        raise FieldError(name, f"{name} takes one value or {dims} (one per spatial dim), "
                               f"got {len(parts)}: {text!r}")
    try:
        if name == "padding":
            flags.padding(text)
        else:
            flags.ints(name, text)
    except ConvSpecError as e:
        raise FieldError(name, str(e).replace("--padding", "padding")) from None
    return text


def spec_from_fields(given: dict) -> tuple[ConvSpec, bool, int]:
    """``(spec, ints, seed)`` of the form's fields; raises :class:`FieldError`.

    Fields not given take :data:`FIELDS`' defaults; unknown fields are refused.
    """
    unknown = sorted(set(given) - set(FIELDS))
    if unknown:
        raise FieldError("form", f"unknown field(s) {', '.join(map(repr, unknown[:5]))}; the "
                                 f"fields are {', '.join(FIELDS)}")
    fields = {**FIELDS, **{k: str(v).strip() for k, v in given.items()}}
    for name, value in fields.items():
        if len(value) > MAX_FIELD:
            raise FieldError(name, f"{name} is {len(value)} characters long, more than "
                                   f"{MAX_FIELD}")
    dims = _int(fields, "dims", 1, 2)
    c_in = _int(fields, "in_channels", 1, builder.MAX_CELLS)
    c_out = _int(fields, "out_channels", 1, builder.MAX_CELLS)
    groups = _int(fields, "groups", 1, builder.MAX_CELLS)
    seed = _int(fields, "seed", 0, 2**32 - 1)
    ints = fields["ints"].lower() in ("1", "true", "on", "yes")
    size = _per_dim(fields, "size", dims)
    values = {name: _per_dim(fields, name, dims)
              for name in ("kernel", "stride", "padding", "dilation")}
    op = fields["output_padding"] or None
    if op is not None:
        op = _per_dim(fields, "output_padding", dims)
    sizes = flags.ints("size", size)
    sizes = sizes * dims if len(sizes) == 1 else sizes
    shape = ",".join(map(str, (1, c_in) + sizes))
    try:
        if groups > 1 and c_in % groups:
            raise FieldError("groups", f"groups={groups} must divide the in channels {c_in}")
        spec = flags.build_spec(shape, c_out, values["kernel"], values["stride"],
                                values["padding"], values["dilation"], groups, op)
        builder.check_page_size(spec)
    except FieldError:
        raise
    except ConvSpecError as e:
        message = str(e).replace("--", "")
        raise FieldError(_field_of(message) or "form", message) from None
    return spec, ints, seed


def page_for(given: dict) -> dict:
    """The page data of the form's fields (see :func:`spec_from_fields`)."""
    spec, ints, seed = spec_from_fields(given)
    return page.page_data(spec, ints=ints, seed=seed)


class _Handler(BaseHTTPRequestHandler):
    server_version = "tconv-serve"
    timeout = TIMEOUT
    protocol_version = "HTTP/1.1"

    # -- answers -------------------------------------------------------------------------------

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data) -> None:
        self._send(status, json.dumps(data, allow_nan=False).encode(),
                   "application/json; charset=utf-8")

    def _error(self, status: int, message: str, field: str = "form") -> None:
        self._json(status, {"error": message, "field": field})

    def _page_json(self, given: dict) -> None:
        try:
            with self.server.workers:
                data = page_for(given)
        except FieldError as e:
            self._error(HTTPStatus.BAD_REQUEST, str(e), e.field)
            return
        except ConvSpecError as e:
            self._error(HTTPStatus.BAD_REQUEST, str(e))
            return
        self._json(HTTPStatus.OK, data)

    # -- requests ----------------------------------------------------------------------------

    def _query(self) -> dict | None:
        parts = urlsplit(self.path)
        if len(parts.query.encode()) > MAX_QUERY:
            self._error(HTTPStatus.REQUEST_URI_TOO_LONG,
                        f"the query is {len(parts.query.encode())} bytes, more than {MAX_QUERY}")
            return None
        try:
            return _single(parse_qs(parts.query, keep_blank_values=True, max_num_fields=32,
                                    strict_parsing=False))
        except FieldError as e:
            self._error(HTTPStatus.BAD_REQUEST, str(e), e.field)
            return None
        except ValueError as e:
            self._error(HTTPStatus.BAD_REQUEST, str(e))
            return None

    def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
        self._safely(self._get)

    def do_HEAD(self) -> None:  # noqa: N802
        self._safely(self._get)

    def _get_with_body(self) -> bool:
        """A GET or HEAD that announces a body: its body is never read, so the connection
        cannot carry another request."""
        return bool(self.headers.get("Content-Length") not in (None, "0")
                    or self.headers.get("Transfer-Encoding"))

    def do_POST(self) -> None:  # noqa: N802
        self._safely(self._post)

    def _safely(self, answer) -> None:
        """Any failure the request did not cause is a 500 with one line, never a traceback;
        the traceback goes to the server's stderr."""
        try:
            answer()
        except Exception:  # noqa: BLE001
            traceback.print_exc(file=sys.stderr)
            self.close_connection = True
            try:
                self._error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error: see the "
                            "terminal running tconv serve")
            except OSError:
                pass

    def _get(self) -> None:
        if self._get_with_body():
            self.close_connection = True
        path = urlsplit(self.path).path
        given = self._query()
        if given is None:
            return
        if path == "/":
            self._send(HTTPStatus.OK, self.server.front_page, "text/html; charset=utf-8")
        elif path == "/api/page":
            self._page_json(given)
        else:
            self._error(HTTPStatus.NOT_FOUND, f"no such page: {path}")

    def _post(self) -> None:
        path = urlsplit(self.path).path
        if path != "/api/page":
            self.close_connection = True
            self._error(HTTPStatus.NOT_FOUND, f"no such page: {path}")
            return
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding") or length is None:
            self.close_connection = True
            self._error(HTTPStatus.LENGTH_REQUIRED, "a POST needs a Content-Length")
            return
        try:
            size = int(length)
        except ValueError:
            size = -1
        if not 0 <= size <= MAX_BODY:
            self.close_connection = True   # the body is not read: drop the connection
            self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                        f"the request body is {length} bytes, more than {MAX_BODY}")
            return
        body = self.rfile.read(size).decode("utf-8", errors="replace")
        try:
            if self.headers.get_content_type() == "application/json":
                given = json.loads(body) if body else {}
                if not isinstance(given, dict):
                    raise ValueError("the JSON body must be an object of fields")
            else:
                given = _single(parse_qs(body, keep_blank_values=True, max_num_fields=32))
        except FieldError as e:
            self._error(HTTPStatus.BAD_REQUEST, str(e), e.field)
            return
        except ValueError as e:
            self._error(HTTPStatus.BAD_REQUEST, f"the request body is not form fields: {e}")
            return
        self._page_json(given)

    def log_message(self, format, *args) -> None:  # noqa: A002 (the signature of http.server)
        if self.server.verbose:
            super().log_message(format, *args)


def _single(query: dict) -> dict:
    """One value per field (a field given twice is refused)."""
    for name, values in query.items():
        if len(values) > 1:
            raise FieldError(name, f"{name} is given {len(values)} times")
    return {name: values[0] for name, values in query.items()}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # one in-flight request per connection thread; a small backlog is enough locally
    request_queue_size = 16


def make_server(host: str = "127.0.0.1", port: int = 0, *, verbose: bool = False) -> _Server:
    """A playground server bound to ``host:port`` (port 0: any free port), not yet serving.

    Run it with ``serve_forever()`` (in a thread, say) and stop it with ``shutdown()`` and
    ``server_close()``; ``server_address`` has the port it got.
    """
    server = _Server((host, port), _Handler)
    server.verbose = verbose
    server.workers = threading.BoundedSemaphore(WORKERS)
    spec, ints, seed = spec_from_fields({})
    server.front_page = page.render(page.page_data(spec, ints=ints, seed=seed),
                                    serve=True).encode()
    return server


def serve(host: str = "127.0.0.1", port: int = 8765, *, verbose: bool = False,
          announce=print) -> None:
    """Serve until interrupted; ``announce`` gets the URL once the socket is bound."""
    server = make_server(host, port, verbose=verbose)
    bound_host, bound_port = server.server_address[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    announce(f"tconv serve: http://{shown}:{bound_port}/ (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
