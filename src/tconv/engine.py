"""The engine behind ``tconv sweep`` and ``tconv check``: run many items, lose none of them.

A *job* says what to do with one item (a spec); the engine runs a stream of items through it
and yields one :class:`Outcome` per item, as results arrive. Three ways to run, one behaviour:

``inline``
    In the calling process, one item after another. No isolation: the Python API's default
    for one worker and no timeout (tests can patch what the job calls).
``local``
    One *sandbox* (a child process) driven from the calling process; no cluster.
``dask``
    A Dask ``LocalCluster`` of N worker processes, or an existing cluster (``scheduler``).
    Items go out in batches sized from the measured time per item, so that a batch takes about
    ``BATCH_SECONDS`` and the scheduling (about 2 ms a task) stays under 1% of the work; at the
    tail, batches shrink so that every worker gets a share. Each Dask worker thread runs its
    batches in a sandbox of its own, kept between batches, so the frameworks a job imports are
    imported once per worker.

A sandbox is ``python -c 'from tconv.engine import _child_main; _child_main()'``, talking to its
parent over two pipes (length-prefixed pickles; the child's stdout and stdin are /dev/null, so a
target that prints cannot disturb the protocol, and its stderr goes to a file whose last line is
quoted when the child dies). It ignores SIGINT (Ctrl-C belongs to the parent, which stops it),
dies with its parent (``PR_SET_PDEATHSIG`` on Linux) and exits after ``IDLE_SECONDS`` without
work. The parent waits at most ``timeout`` seconds for each item's result:

* an item that takes longer is a ``TIMEOUT`` (the sandbox is killed and replaced);
* an item during which the sandbox dies (``os._exit``, ``abort``, a signal, the OOM killer) is run
  once more, alone, in a fresh sandbox; if that dies too it is a ``CRASH``, with how the process
  ended and its last line on stderr, and never retried again;
* an item whose job raises (any ``BaseException``: ``SystemExit`` too) is an ``ERROR`` with the
  message;
* a job whose ``setup`` fails (a target that does not import, exits or hangs at import) raises
  :class:`SetupError` in the caller.

A Dask worker that dies (killed, out of memory) takes its batches with it; the scheduler runs
them again on another worker. A batch that kills workers more often than the scheduler allows
(``allowed-failures``; 1 on the clusters tconv starts) is split into one task per item, and an
item that still kills its worker is a ``CRASH``.

:class:`Checkpoint` streams results to a JSON Lines file and reads them back to resume.
"""
from __future__ import annotations

import hashlib
import json
import math
import mmap
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections import deque
from typing import Any, Iterable, Iterator, NamedTuple

from .spec import ConvSpecError

OK, ERROR, CRASH, TIMEOUT = "OK", "ERROR", "CRASH", "TIMEOUT"

#: Aimed-at duration of one batch, seconds.
BATCH_SECONDS = 0.5
#: A sandbox sends results back at least this often (seconds), several at a time when they
#: come faster: one wake-up of its parent per result cost more than a fast spec.
FLUSH_SECONDS = 0.02
#: A sandbox with no work for this long exits (it is restarted when needed).
IDLE_SECONDS = 300.0
#: The longest a sandbox may take to start and run the job's ``setup``, at least.
SETUP_SECONDS = 120.0
#: The environment variable the command line reads when ``--scheduler`` is not given.
SCHEDULER_ENV = "TCONV_SCHEDULER"


class SetupError(ConvSpecError):
    """A job could not start: its setup raised, exited, hung or killed the process."""


class Outcome(NamedTuple):
    """What became of one item: ``status`` OK (``value`` holds the job's result), ERROR (the job
    raised), CRASH (the process died twice) or TIMEOUT; ``message`` says what happened."""

    key: Any
    status: str
    value: Any = None
    message: str = ""
    seconds: float = 0.0


class Job:
    """What to do with each item. Subclasses are picklable (module-level classes whose fields
    pickle); ``setup`` runs once per process before the first item, ``run`` once per item."""

    def setup(self) -> None:
        """Prepare the process (import the target, the frameworks)."""

    def run(self, item) -> Any:
        raise NotImplementedError


def _dumps(obj) -> bytes:
    """Pickle by value where plain pickle cannot (functions of ``__main__``, lambdas)."""
    try:
        import cloudpickle
    except ImportError:  # no Dask installed: plain pickle serves module-level objects
        return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def describe_exception(e: BaseException) -> str:
    """``"RuntimeError: message"``, one line."""
    text = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
    return " ".join(text.split())


def _setup_message(e: BaseException) -> str:
    """A tconv error's own message (it names what is wrong), else the exception and message."""
    return " ".join(str(e).split()) if isinstance(e, ConvSpecError) else describe_exception(e)


# -- the pipe protocol ----------------------------------------------------------------------------

class _Conn:
    """Length-prefixed pickles over two file descriptors."""

    def __init__(self, rfd: int, wfd: int):
        self.rfd, self.wfd = rfd, wfd
        self.pending: list[bytes] = []

    def send(self, obj) -> None:
        self.queue(obj)
        self.flush()

    def queue(self, obj) -> None:
        """Pickle ``obj`` now, write it with the next :meth:`flush`."""
        data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        self.pending.append(struct.pack("<Q", len(data)) + data)

    def flush(self) -> None:
        view = memoryview(b"".join(self.pending))
        self.pending.clear()
        while view:
            view = view[os.write(self.wfd, view):]

    def _read(self, n: int) -> bytes:
        chunks, left = [], n
        while left:
            chunk = os.read(self.rfd, min(left, 1 << 20))
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def recv_bytes(self, timeout: float | None = None) -> bytes:
        """The next message, still pickled; ``TimeoutError`` if none starts within
        ``timeout``, ``EOFError`` if the other side has closed."""
        if timeout is not None:
            ready, _, _ = select.select([self.rfd], [], [], max(timeout, 0.0))
            if not ready:
                raise TimeoutError
        (size,) = struct.unpack("<Q", self._read(8))
        return self._read(size)

    def recv(self, timeout: float | None = None):
        """The next object (as :meth:`recv_bytes`)."""
        return pickle.loads(self.recv_bytes(timeout))

    def close(self) -> None:
        for fd in (self.rfd, self.wfd):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.rfd = self.wfd = -1


# -- the child ------------------------------------------------------------------------------------

def _die_with_parent() -> None:
    """Ask Linux to kill this process when the thread that started it ends."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the idle timeout and EOF still end it
        pass


def _child_main() -> None:
    """The sandbox: set up the job, then run batches of items until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    conn = _Conn(int(sys.argv[1]), int(sys.argv[2]))
    progress = mmap.mmap(int(sys.argv[3]), 8)   # which item of the batch runs, for the parent
    pid = os.getpid()
    if os.getppid() == 1:   # the parent died before prctl took effect
        os._exit(0)
    try:
        _, path, job_bytes = conn.recv()
    except EOFError:
        os._exit(0)
    sys.path[:] = path
    try:
        job = pickle.loads(job_bytes)
        job.setup()
    except BaseException as e:  # noqa: BLE001 - the job's own failure, reported to the parent
        if os.getpid() == pid:
            conn.send(("setup-error", _setup_message(e)))
        os._exit(0)
    if os.getpid() != pid:      # setup forked: the copy must not answer
        os._exit(0)
    conn.send(("ready",))
    while True:
        try:
            message = conn.recv(IDLE_SECONDS)
        except (EOFError, TimeoutError):
            os._exit(0)
        if message[0] == "stop":
            os._exit(0)
        flushed = time.perf_counter()
        try:
            for position, (key, blob) in enumerate(message[1]):
                struct.pack_into("<q", progress, 0, position)
                start = time.perf_counter()
                try:
                    reply = (OK, key, job.run(pickle.loads(blob)), "")
                except BaseException as e:  # noqa: BLE001 - SystemExit, KeyboardInterrupt too
                    reply = (ERROR, key, None, describe_exception(e))
                if os.getpid() != pid:  # the job forked and this is the copy: vanish quietly
                    os._exit(0)
                now = time.perf_counter()
                try:
                    conn.queue(reply + (now - start,))
                except Exception as e:  # noqa: BLE001 - a result that does not pickle
                    conn.queue((ERROR, key, None, "the result cannot be sent back: "
                                + describe_exception(e), now - start))
                if now - flushed >= FLUSH_SECONDS:   # fast items go back a few at a time
                    conn.flush()
                    flushed = now
            conn.send(("end",))
        except BrokenPipeError:
            os._exit(0)


_CHILD = "from tconv.engine import _child_main; _child_main()"


def encode(items: list) -> list[tuple[Any, bytes]]:
    """``(key, item)`` pairs with each item pickled once, by the caller: the Dask worker between
    the caller and the sandbox passes the bytes on without reading them."""
    return [(key, pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)) for key, item in items]


def decode(reply: Outcome | bytes) -> Outcome:
    """An outcome from a sandbox's raw reply (``(status, key, value, message, seconds)``)."""
    if isinstance(reply, Outcome):
        return reply
    status, key, value, message, seconds = pickle.loads(reply)
    return Outcome(key, status, value, message, seconds)


def _how_it_ended(returncode: int | None) -> str:
    if returncode is None:
        return "stopped answering"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with code {returncode}"


#: The variables that hold each framework to one thread of computation, where not already set.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}
_XLA_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def one_thread_environment() -> dict[str, str]:
    """This process's environment for a sandbox: one thread of computation per framework, so
    that a worker is one core (the specs are small; Dask sets the first three for its workers
    too). A variable already set is kept."""
    env = dict(os.environ)
    for name, value in ONE_THREAD.items():
        env.setdefault(name, value)
    flags = env.get("XLA_FLAGS", "")
    if "multi_thread_eigen" not in flags and "intra_op_parallelism" not in flags:
        env["XLA_FLAGS"] = f"{flags} {_XLA_ONE_THREAD}".strip()
    return env


class Sandbox:
    """One child process running one job, driven from the thread that created it. It starts
    at once; the job's set-up is awaited when the first items are sent (:meth:`wait_ready`)."""

    def __init__(self, job_bytes: bytes, setup_timeout: float = SETUP_SECONDS):
        self.job_bytes, self.setup_timeout = job_bytes, setup_timeout
        self.closed = self.ready = False
        parent_r, child_w = os.pipe()
        child_r, parent_w = os.pipe()
        self.stderr = tempfile.TemporaryFile()
        import fcntl

        fcntl.fcntl(self.stderr.fileno(), fcntl.F_SETFL,
                    fcntl.fcntl(self.stderr.fileno(), fcntl.F_GETFL) | os.O_APPEND)
        self._progress_file = tempfile.TemporaryFile()
        self._progress_file.write(b"\0" * 8)
        self._progress_file.flush()
        self.progress = mmap.mmap(self._progress_file.fileno(), 8)
        fd = self._progress_file.fileno()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _CHILD, str(child_r), str(child_w), str(fd)],
                pass_fds=(child_r, child_w, fd), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=self.stderr, close_fds=True,
                env=one_thread_environment())
        finally:
            os.close(child_r)
            os.close(child_w)
        self.conn = _Conn(parent_r, parent_w)
        self.conn.send(("hello", list(sys.path), job_bytes))

    def wait_ready(self) -> None:
        """Wait for the job's set-up; :class:`SetupError` if it failed, died or hung."""
        if self.ready:
            return
        try:
            reply = self.conn.recv(self.setup_timeout)
        except TimeoutError:
            self.close()
            raise SetupError(f"the set-up took longer than {self.setup_timeout:g} s") from None
        except EOFError:
            rc = self.proc.wait()
            words = self.last_words()
            self.close()
            raise SetupError(f"the process {_how_it_ended(rc)} during set-up"
                             + (f": {words}" if words else "")) from None
        if reply[0] == "setup-error":
            self.close()
            raise SetupError(reply[1])
        self.ready = True

    @property
    def alive(self) -> bool:
        return not self.closed and self.proc.poll() is None

    def last_words(self) -> str:
        """The last non-empty line the child wrote on stderr, shortened."""
        try:
            self.stderr.seek(0, os.SEEK_END)
            size = self.stderr.tell()
            self.stderr.seek(max(0, size - 4096))
            lines = [ln.strip() for ln in self.stderr.read().decode(errors="replace")
                     .splitlines() if ln.strip()]
        except (OSError, ValueError):
            return ""
        return lines[-1][:300] if lines else ""

    def run(self, items: list, timeout: float | None,
            raw: bool = False) -> Iterator[tuple[int, Outcome | bytes]]:
        """``(position, outcome)`` for the :func:`encode`\\ d ``items``, in order, until the
        sandbox dies or an item takes longer than ``timeout``: then the item that was running
        (the child marks it in a shared page before it starts it) gets a CRASH or TIMEOUT, the
        sandbox is dead, and the items without an outcome were not run (or their results, sent
        a few at a time, were lost with the process). With ``raw``, the child's replies are
        yielded as it pickled them (:func:`decode` reads them), so that a Dask worker passes
        them on without unpickling and pickling again."""
        self.wait_ready()
        self.stderr.seek(0)
        self.stderr.truncate()
        struct.pack_into("<q", self.progress, 0, -1)
        try:
            self.conn.send(("batch", items))
        except BrokenPipeError:
            self._death()
            return
        finished = False
        try:
            for position in range(len(items)):
                try:
                    reply = self.conn.recv_bytes(timeout)
                except TimeoutError:
                    running = self.running()
                    self.close()
                    if running >= 0:
                        yield running, Outcome(items[running][0], TIMEOUT, seconds=timeout,
                                               message=f"no result within {timeout:g} s")
                    return
                except EOFError:
                    running, how = self.running(), self._death()
                    if running >= 0:
                        yield running, Outcome(items[running][0], CRASH, message=how)
                    return
                yield position, reply if raw else decode(reply)
            self.conn.recv()  # ("end",)
            finished = True
        finally:
            if not finished:  # abandoned half-way: its replies must not reach the next batch
                self.close()

    def running(self) -> int:
        """The position in the batch of the item the child runs (or ran last), -1 if none."""
        return struct.unpack_from("<q", self.progress, 0)[0]

    def _death(self) -> str:
        try:
            rc = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            rc = None
        words = self.last_words()
        self.close()
        return _how_it_ended(rc) + (f" ({words})" if words else "")

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.proc.poll() is None:
            try:
                self.conn.send(("stop",))
            except OSError:
                pass
            try:
                self.proc.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.conn.close()
        self.stderr.close()
        self.progress.close()
        self._progress_file.close()


# sandboxes of this process, by (thread, job): a Dask worker keeps one per thread between batches
_SANDBOXES: dict[tuple[int, str], Sandbox] = {}
_LOCK = threading.Lock()

if hasattr(os, "register_at_fork"):  # a forked child must not talk to its parent's sandboxes
    os.register_at_fork(after_in_child=_SANDBOXES.clear)


def _fingerprint(job_bytes: bytes) -> str:
    return hashlib.sha1(job_bytes).hexdigest()


def _sandbox(job_bytes: bytes, fresh: bool = False) -> Sandbox:
    key = (threading.get_ident(), _fingerprint(job_bytes))
    with _LOCK:
        box = _SANDBOXES.pop(key, None)
    if box is not None and (fresh or not box.alive):
        box.close()
        box = None
    if box is None:
        box = Sandbox(job_bytes)
    with _LOCK:
        _SANDBOXES[key] = box
    return box


def close_sandboxes() -> int:
    """Stop every sandbox of this process; returns how many there were."""
    with _LOCK:
        boxes = list(_SANDBOXES.values())
        _SANDBOXES.clear()
    for box in boxes:
        box.close()
    return len(boxes)


def run_isolated(job_bytes: bytes, items: list, timeout: float | None,
                 retries: int = 1, raw: bool = False) -> Iterator[Outcome | bytes]:
    """The outcomes of ``items`` (:func:`encode`\\ d ``(key, item)`` pairs) run in this
    thread's sandbox for the job: in order, except that after a crash or a timeout the items
    whose results the dead process took with it come again later. An item during which the
    sandbox dies is run again alone, ``retries`` times, each in a fresh sandbox, before it is
    a CRASH. ``raw`` as in :meth:`Sandbox.run`."""
    pending = list(items)
    idle_deaths = 0
    while pending:
        box = _sandbox(job_bytes)
        answered: set[int] = set()
        for position, outcome in box.run(pending, timeout, raw):
            if isinstance(outcome, Outcome) and outcome.status == CRASH:
                outcome = _retry(job_bytes, pending[position], timeout, retries,
                                 outcome.message, raw)
            answered.add(position)
            yield outcome
        if answered:
            idle_deaths = 0
        elif not box.alive:    # died before it ran anything: not an item's doing
            idle_deaths += 1
            if idle_deaths >= 2:
                raise SetupError(f"the process dies before it runs anything: "
                                 f"{_how_it_ended(box.proc.returncode)}")
        pending = [pair for i, pair in enumerate(pending) if i not in answered]


def _retry(job_bytes, item, timeout, retries, first: str, raw: bool) -> Outcome | bytes:
    deaths = [first]
    for _ in range(retries):
        outcomes = list(_sandbox(job_bytes, fresh=True).run([item], timeout, raw))
        if not outcomes:
            deaths.append("died before it started")
            continue
        outcome = outcomes[0][1]
        if not isinstance(outcome, Outcome) or outcome.status != CRASH:
            return outcome
        deaths.append(outcome.message)
    times = {1: "once", 2: "twice"}.get(len(deaths), f"{len(deaths)} times")
    detail = deaths[0] if len(set(deaths)) == 1 else "; then ".join(deaths)
    return Outcome(item[0], CRASH, message=f"crashed the process {times}: {detail}")


def _dask_batch(job_bytes: bytes, batch: bytes, timeout, retries: int) -> bytes:
    """A Dask task: one batch (a pickled list of :func:`encode`\\ d items) through this worker
    thread's sandbox; the results as the sandbox pickled them, in one pickle. Dask moves one
    bytes object each way: a list of many small ones costs it ten times as much."""
    items = pickle.loads(batch)
    return pickle.dumps(list(run_isolated(job_bytes, items, timeout, retries, raw=True)),
                        protocol=pickle.HIGHEST_PROTOCOL)


def _dask_warm(job_bytes: bytes) -> None:
    """A Dask task: start this worker thread's sandbox for the job and wait for its set-up."""
    _sandbox(job_bytes).wait_ready()


def _close_worker_sandboxes() -> int:
    return close_sandboxes()


def dask_setup(worker) -> None:
    """Dask's preload hook, for the workers of the clusters tconv starts: Ctrl-C in the terminal
    reaches the whole process group, and belongs to the command, which stops its workers."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


# -- the engine -----------------------------------------------------------------------------------

class _Sizer:
    """Batch sizes from the median seconds per item of the last results."""

    def __init__(self, fixed: int | None, target: float = BATCH_SECONDS):
        self.fixed, self.target = fixed, target
        self.times: deque[float] = deque(maxlen=64)

    def observe(self, outcomes: Iterable[Outcome]) -> None:
        self.times.extend(o.seconds for o in outcomes if o.status == OK)

    def size(self, remaining: int | None, slots: int) -> int:
        if self.fixed:
            return self.fixed
        if not self.times:
            n = 2
        else:
            per_item = sorted(self.times)[len(self.times) // 2]
            n = max(1, int(self.target / max(per_item, 1e-6)))
        if remaining is not None:  # the tail: leave every slot two batches' worth
            n = min(n, max(1, math.ceil(remaining / (2 * slots))))
        return n


def mode_for(workers: int, scheduler: str | None, timeout: float | None,
             sandbox: bool = False) -> str:
    """``dask`` with a scheduler or several workers, ``local`` with a timeout or when asked for
    a sandbox, else ``inline``."""
    if scheduler or workers > 1:
        return "dask"
    return "local" if timeout or sandbox else "inline"


class Engine:
    """Runs items through a job: ``inline``, in one ``local`` sandbox, or on ``dask``.

    Parameters
    ----------
    workers
        Worker processes of the ``LocalCluster`` to start (ignored with ``scheduler``).
    scheduler
        ``tcp://host:port`` of an existing Dask scheduler (the command line also reads
        ``$TCONV_SCHEDULER``).
    timeout
        Seconds one item may take (None: no limit). Needs a sandbox.
    batch_size
        Items per Dask task; default: sized from the measured time per item.
    mode
        ``"inline"``, ``"local"`` or ``"dask"``; default: ``dask`` with a scheduler or more
        than one worker, ``local`` with a timeout, else ``inline``.

    Use as a context manager: the cluster (or sandbox) lives until the ``with`` ends.
    """

    def __init__(self, *, workers: int = 1, scheduler: str | None = None,
                 timeout: float | None = None, batch_size: int | None = None,
                 mode: str | None = None):
        mode = mode or mode_for(workers, scheduler, timeout)
        if mode == "inline" and timeout:
            raise ValueError("a timeout needs a sandbox: mode 'local' or 'dask'")
        self.mode, self.workers, self.scheduler = mode, workers, scheduler
        self.timeout, self.batch_size = timeout, batch_size
        self.client = self.cluster = None
        self._setup_done: set[int] = set()
        self._pickled: dict[int, tuple[Job, bytes]] = {}
        self._warming: list = []
        self.sandboxes_started_here = False

    # lifecycle
    def __enter__(self) -> Engine:
        if self.mode == "dask":
            self._start_dask()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _start_dask(self) -> None:
        import logging

        try:
            import dask
            from distributed import Client, LocalCluster
        except ImportError:
            raise ConvSpecError("--workers above 1 and --scheduler run on Dask, which is not "
                                "installed: pip install 'tconv[distributed]'") from None

        if self.scheduler:
            try:
                self.client = Client(self.scheduler, timeout=10, set_as_default=False)
            except (OSError, TimeoutError) as e:
                raise ConvSpecError(f"--scheduler {self.scheduler!r}: cannot connect "
                                    f"({describe_exception(e)})") from None
            return
        # one death per batch is retried elsewhere; a second one splits the batch. The
        # scheduler's HTTP server (no dashboard) takes another port when 8787 is taken: quietly
        # the workers' statistical profiler samples every 10 ms: not wanted here
        with dask.config.set({"distributed.scheduler.allowed-failures": 1,
                              "distributed.worker.profile.enabled": False,
                              "distributed.admin.system-monitor.interval": "2s"}), \
                warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Port .* is already in use")
            self.cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1,
                                        processes=True, dashboard_address=None,
                                        silence_logs=logging.ERROR, host="127.0.0.1",
                                        preload=["tconv.engine"])
            self.client = Client(self.cluster, set_as_default=False)

    def close(self) -> None:
        if self.client is not None:
            if self._warming:
                self.client.cancel(self._warming)
                self._warming = []
            if self.cluster is None:  # someone else's cluster: free the sandboxes left there
                try:
                    self.client.run(_close_worker_sandboxes, wait=True)
                except Exception:  # noqa: BLE001 - best effort, the workers may be gone
                    pass
            self.client.close()
            self.client = None
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None
        if self.mode == "local":
            close_sandboxes()

    @property
    def slots(self) -> int:
        """How many items can run at once."""
        if self.mode != "dask":
            return 1
        try:
            return max(1, sum(self.client.nthreads().values()))
        except Exception:  # noqa: BLE001
            return max(1, self.workers)

    def _bytes(self, job: Job) -> bytes:
        """The job pickled once (the sandboxes are found by these bytes)."""
        if id(job) not in self._pickled:
            self._pickled[id(job)] = (job, _dumps(job))
        return self._pickled[id(job)][1]

    def prepare(self, job: Job) -> None:
        """Start the sandboxes for ``job`` now, without waiting: their set-up (importing the
        frameworks, the target) then overlaps the caller's own work (drawing the specs)."""
        if self.mode == "local":
            _sandbox(self._bytes(job))
        elif self.mode == "dask":
            for address, threads in self.client.nthreads().items():
                self._warming += [self.client.submit(
                    _dask_warm, self._bytes(job), workers=[address], pure=False,
                    key=f"tconv-warm-{os.urandom(8).hex()}") for _ in range(threads)]

    # running
    def map(self, job: Job, items: Iterable[tuple[Any, Any]], *, total: int | None = None,
            retries: int = 1) -> Iterator[Outcome]:
        """One outcome per ``(key, item)``, as they arrive (``inline``/``local``: in order).

        ``items`` is consumed lazily, a batch at a time; ``total`` (how many there are) lets the
        last batches shrink. Stopping the iteration cancels what is still queued.
        """
        if self.mode == "inline":
            return self._map_inline(job, items)
        job_bytes = self._bytes(job)
        if self.mode == "local":
            return self._map_local(job_bytes, items, retries)
        return self._map_dask(job_bytes, items, total, retries)

    def call(self, job: Job, item, retries: int = 1) -> Outcome:
        """The outcome of one item."""
        (outcome,) = self.map(job, [(0, item)], total=1, retries=retries)
        return outcome

    def _map_inline(self, job: Job, items) -> Iterator[Outcome]:
        if id(job) not in self._setup_done:
            try:
                job.setup()
            except KeyboardInterrupt:
                raise
            except BaseException as e:  # noqa: BLE001
                raise SetupError(_setup_message(e)) from None
            self._setup_done.add(id(job))
        for key, item in items:
            start = time.perf_counter()
            try:
                value, status, message = job.run(item), OK, ""
            except KeyboardInterrupt:
                raise
            except BaseException as e:  # noqa: BLE001
                value, status, message = None, ERROR, describe_exception(e)
            yield Outcome(key, status, value, message, time.perf_counter() - start)

    def _map_local(self, job_bytes, items, retries) -> Iterator[Outcome]:
        sizer = _Sizer(self.batch_size)
        items = iter(items)
        while True:
            batch = _take(items, sizer.size(None, 1))
            if not batch:
                return
            for outcome in run_isolated(job_bytes, encode(batch), self.timeout, retries):
                sizer.observe([outcome])
                yield outcome

    def _map_dask(self, job_bytes, items, total, retries) -> Iterator[Outcome]:
        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        client = self.client
        sizer = _Sizer(self.batch_size)
        items = iter(items)
        remaining = total
        in_flight: dict = {}
        done = as_completed(loop=client.loop)
        slots = self.slots

        def submit(batch):
            packed = pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)
            future = client.submit(_dask_batch, job_bytes, packed, self.timeout, retries,
                                   pure=False, key=f"tconv-batch-{os.urandom(8).hex()}")
            in_flight[future] = batch
            done.add(future)

        def fill():
            nonlocal remaining
            while len(in_flight) < 2 * slots:
                batch = _take(items, sizer.size(remaining, slots))
                if not batch:
                    return
                if remaining is not None:
                    remaining -= len(batch)
                submit(encode(batch))

        try:
            fill()
            completed = 0
            while in_flight:
                future = next(done)
                batch = in_flight.pop(future)
                try:
                    outcomes = [decode(o) for o in pickle.loads(future.result())]
                except ImportError as e:   # the worker's Python lacks tconv, or a framework
                    raise SetupError(f"a Dask worker cannot run the job: "
                                     f"{describe_exception(e)}") from None
                except KilledWorker:
                    if len(batch) > 1:  # find the item that kills: one task each
                        for pair in batch:
                            submit([pair])
                        continue
                    outcomes = [Outcome(batch[0][0], CRASH, message="crashed the process: "
                                        "killed the Dask worker that ran it, twice")]
                sizer.observe(outcomes)
                yield from outcomes
                completed += 1
                if completed % 16 == 0:
                    slots = self.slots
                fill()
        finally:
            if in_flight:
                client.cancel(list(in_flight))


def _take(items: Iterator, n: int) -> list:
    batch = []
    for pair in items:
        batch.append(pair)
        if len(batch) >= n:
            break
    return batch


# -- the checkpoint -------------------------------------------------------------------------------

class Checkpoint:
    """Results as JSON Lines, one object per line, written as they arrive.

    The first line is the header ``{"record": "header", "command": ..., "format": 1,
    "params": {...}}``; every other line is a record whose ``"spec"`` is the item's key. The
    records of one item are written together with one ``write`` and flushed, so an interrupted
    run leaves whole items; a torn last line (a killed process) is cut off when the file is
    resumed, with the other records of its item.

    ``resume=True`` on an existing file checks that it was written with the same ``params`` and
    appends to it; :meth:`replay` yields the records already there, item by item.
    """

    FORMAT = 1

    def __init__(self, path: str, command: str, params: dict, *, resume: bool):
        self.path, self.command, self.params = path, command, params
        self.done: set = set()
        self.resumed = resume and os.path.exists(path)
        if self.resumed:
            self._check_and_repair()
            mode = "a"
        else:
            if os.path.exists(path) and os.path.getsize(path) > 0:
                raise ConvSpecError(f"--out {path!r} exists: continue it with --resume {path}, "
                                    f"or remove it")
            mode = "w"
        try:
            self.file = open(path, mode, encoding="utf-8")
        except OSError as e:
            raise ConvSpecError(f"{path!r} cannot be written: {e.strerror}") from None
        if not self.resumed:
            self._write([{"record": "header", "command": command, "format": self.FORMAT,
                          "params": params}])

    def _lines(self) -> Iterator[tuple[int, dict | None]]:
        """``(end offset, record)`` per whole line; ``None`` for a line that does not parse."""
        offset = 0
        with open(self.path, "rb") as f:
            for raw in f:
                if not raw.endswith(b"\n"):     # written in part
                    yield offset, None
                    return
                offset += len(raw)
                try:
                    yield offset, json.loads(raw)
                except ValueError:
                    yield offset, None
                    return

    def _check_and_repair(self) -> None:
        lines = self._lines()
        header_end, first = next(lines, (0, None))
        if not isinstance(first, dict) or first.get("record") != "header":
            raise ConvSpecError(f"--resume {self.path!r} is not a tconv checkpoint")
        if first.get("command") != self.command:
            raise ConvSpecError(f"--resume {self.path!r} was written by tconv "
                                f"{first.get('command')}, not {self.command}")
        theirs, ours = first.get("params", {}), self.params
        if theirs != ours:
            diff = ", ".join(f"{k} {theirs.get(k)!r} (now {ours.get(k)!r})"
                             for k in sorted(set(theirs) | set(ours))
                             if theirs.get(k) != ours.get(k))
            raise ConvSpecError(f"--resume {self.path!r} was written with other parameters: "
                                f"{diff}")
        # the records of an item are contiguous: keep an item once the next one starts
        good_end, item, item_start = header_end, None, header_end
        torn = False
        for end, record in lines:
            if record is None:
                torn = True
                break
            if record["spec"] != item:
                if item is not None:
                    self.done.add(item)
                item, item_start = record["spec"], good_end
            good_end = end
        if item is not None and not torn:
            self.done.add(item)
        if torn:   # cut the torn line and the rest of its item
            with open(self.path, "r+b") as f:
                f.truncate(item_start)

    def replay(self) -> Iterator[list[dict]]:
        """The records already in the file, one list per item, in file order."""
        if not self.resumed:
            return
        group: list[dict] = []
        lines = self._lines()
        next(lines)
        for _, record in lines:
            if record is None:
                break
            if group and record["spec"] != group[0]["spec"]:
                yield group
                group = []
            group.append(record)
        if group:
            yield group

    def _write(self, records: list[dict]) -> None:
        self.file.write("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records))
        self.file.flush()

    def add(self, key, records: list[dict]) -> None:
        """The records of one item, unless it is already in the file."""
        if key in self.done:
            return
        self.done.add(key)
        self._write(records)

    def close(self) -> None:
        self.file.close()
