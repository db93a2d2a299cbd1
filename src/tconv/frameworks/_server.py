"""Run a backend's conversions in a child process that lives as long as its parent needs it.

Some converters cannot share a process with the rest of tconv (nobuco needs Keras 2 where the
rest uses Keras 3), read files from the working directory (onnx2tf), or may abort the process
they run in. :class:`Server` starts ``python -m tconv.frameworks._server MODULE`` once, with its own
environment and working directory, and sends it calls: ``call("fn", *args)`` runs
``MODULE.fn(*args)`` in the child and returns the result. Requests and answers are pickles,
each preceded by its length, on the child's stdin and on a copy of its stdout; the child's own
prints (converters print a lot) go to its stderr, a temporary file whose last lines explain a
crash.

A call that raises in the child raises :class:`RemoteError` (the converter refused); a child
that dies or does not answer within the timeout raises :class:`ServerCrashed` and is started
again by the next call. The child exits when its stdin closes, so it never outlives its parent.
"""
from __future__ import annotations

import atexit
import importlib
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback

_HEADER = struct.Struct("<Q")


class RemoteError(Exception):
    """The called function raised in the child; the message is ``Type: message``."""


class ServerCrashed(Exception):
    """The child died or did not answer in time; the message says how, with its last output."""


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


class Server:
    """One child process running ``module``; see the module docstring.

    Parameters
    ----------
    module : str
        The module whose functions the child calls. Its optional ``child_init()`` runs once,
        before the child says it is ready (import the converter there).
    env : dict, optional
        Variables added to the parent's environment for the child.
    cwd : str, optional
        The child's working directory.
    timeout : float
        Seconds one call may take.
    startup_timeout : float
        Seconds the child may take to import and run ``child_init()``.
    """

    def __init__(self, module: str, *, env: dict | None = None, cwd: str | None = None,
                 timeout: float = 120.0, startup_timeout: float = 300.0):
        self.module, self.env, self.cwd = module, dict(env or {}), cwd
        self.timeout, self.startup_timeout = timeout, startup_timeout
        self._proc: subprocess.Popen | None = None
        self._log = None
        self._pid = os.getpid()
        atexit.register(self.close)

    # -- the parent's side ----------------------------------------------------------------------

    def call(self, function: str, *args, timeout: float | None = None):
        """``module.function(*args)`` in the child; raises RemoteError or ServerCrashed."""
        if self._pid != os.getpid():        # a forked copy: the child belongs to the parent
            self._proc, self._log, self._pid = None, None, os.getpid()
        if self._proc is None or self._proc.poll() is not None:
            self._start()
        self._log.seek(0)
        self._log.truncate()
        answer = self._exchange(("call", function, args), timeout or self.timeout,
                                f"{function}()")
        kind, value = answer
        if kind == "error":
            if value.startswith("SystemExit"):   # the converter logged why, then exited
                value += self._tail()
            raise RemoteError(value)
        return value

    def _start(self) -> None:
        self.close()
        self._log = tempfile.TemporaryFile(mode="a+b")
        env = {**os.environ, **self.env}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tconv.frameworks._server", self.module],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, env=env,
            cwd=self.cwd)
        kind, value = self._exchange(None, self.startup_timeout, "start-up")
        if kind == "error":
            self.close()
            raise RemoteError(value)

    def _exchange(self, request, timeout: float, what: str):
        proc = self._proc
        try:
            if request is not None:
                data = pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)
                proc.stdin.write(_HEADER.pack(len(data)) + data)
                proc.stdin.flush()
            header = self._read(_HEADER.size, timeout, what)
            return pickle.loads(self._read(_HEADER.unpack(header)[0], timeout, what))
        except BrokenPipeError:
            raise self._died(what) from None

    def _read(self, size: int, timeout: float, what: str) -> bytes:
        deadline = time.monotonic() + timeout
        fd = self._proc.stdout.fileno()
        chunks, got = [], 0
        while got < size:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(left, 0))
            if not ready:
                tail = self._tail()
                self.close()
                raise ServerCrashed(f"the {self.module} process did not answer {what} within "
                                    f"{timeout:g} s{tail}")
            chunk = os.read(fd, size - got)
            if not chunk:
                raise self._died(what)
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def _died(self, what: str) -> ServerCrashed:
        try:
            code = self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            code = None
        how = ("closed its output" if code is None else
               f"was killed by {_signal_name(code)}" if code < 0 else f"exited with code {code}")
        tail = self._tail()
        self.close()
        return ServerCrashed(f"the {self.module} process {how} during {what}{tail}")

    def _tail(self, lines: int = 3) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        text = self._log.read().decode(errors="replace").strip().splitlines()
        text = [line.strip() for line in text if line.strip()][-lines:]
        return (": " + " | ".join(text)[-400:]) if text else ""

    def close(self) -> None:
        """End the child (if running) and drop its log."""
        if self._pid != os.getpid():
            return
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                proc.stdin.close()
            except OSError:
                pass
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            proc.stdout.close()
        if self._log is not None:
            self._log.close()
            self._log = None


# -- the child's side -----------------------------------------------------------------------------

def _write(out, message) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(_HEADER.pack(len(data)) + data)
    out.flush()


def _read_exact(stream, size: int) -> bytes | None:
    data = stream.read(size)
    return data if data and len(data) == size else None


def _describe(error: BaseException) -> str:
    """``Type: first line``, without the terminal colour codes some converters put in."""
    import re

    lines = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}".strip()


def _child(module_name: str) -> None:
    out = os.fdopen(os.dup(1), "wb")   # the answers; fd 1 becomes stderr for every print
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        module = importlib.import_module(module_name)
        init = getattr(module, "child_init", None)
        if init is not None:
            init()
    except Exception as error:  # the converter cannot even be imported
        traceback.print_exc()
        _write(out, ("error", _describe(error)))
        return
    _write(out, ("ok", None))
    stdin = sys.stdin.buffer
    while True:
        header = _read_exact(stdin, _HEADER.size)
        if header is None:                  # the parent closed the pipe (or died): done.
            out.close()                     # os._exit: TensorFlow's threads can keep a normal
            os._exit(0)                     # interpreter exit spinning long after the parent
        _, function, args = pickle.loads(_read_exact(stdin, _HEADER.unpack(header)[0]))
        try:
            answer = ("ok", getattr(module, function)(*args))
        except (Exception, SystemExit) as error:  # a converter may sys.exit() on failure
            traceback.print_exc()
            answer = ("error", _describe(error))
        _write(out, answer)


if __name__ == "__main__":
    _child(sys.argv[1])
