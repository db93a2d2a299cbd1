"""What a benchmark ran on: the CPU, its SIMD level, the BLAS and its threads, PyTorch's kernels.

``tconv bench`` puts :func:`describe` into its JSON report (the ``hardware`` block) and prints
:func:`one_line` above its tables, so that the figures of one run stay with the machine they
were measured on and runs on an AMD and an Intel machine can be laid side by side.
"""
from __future__ import annotations

import os
import platform


def _cpuinfo() -> tuple[str | None, set[str]]:
    """The CPU's vendor, model name, family and model number, and its flags, from
    ``/proc/cpuinfo`` (Linux); ``(platform.processor(), set())`` elsewhere."""
    fields, flags = {}, set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("vendor_id", "model name", "cpu family", "model"):
                    fields.setdefault(key, value.strip())
                elif key == "flags" and not flags:
                    flags = set(value.split())
                elif not line.strip() and fields:
                    break
    except OSError:
        pass
    if "model name" not in fields:
        return platform.processor() or None, flags
    model = f"{fields.get('vendor_id', '')} {fields['model name']}".strip()
    if "cpu family" in fields:
        model += f" (family {fields['cpu family']}, model {fields.get('model', '?')})"
    return model, flags


def simd_level(flags: set[str]) -> str | None:
    """The widest x86 vector extension among ``flags``: ``avx512f``, ``avx2``, ``avx``,
    ``sse4_2``, or None."""
    for level in ("avx512f", "avx2", "avx", "sse4_2"):
        if level in flags:
            return level
    return None


def blas() -> list[dict]:
    """NumPy's (and every other loaded) BLAS/OpenMP pool as threadpoolctl reports it: library,
    version, the kernel it chose (``architecture``), threads and threading layer."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    import numpy  # noqa: F401  (load its BLAS so that it is listed)

    keep = ("user_api", "internal_api", "prefix", "version", "architecture", "num_threads",
            "threading_layer")
    return [{k: info.get(k) for k in keep} | {"library": os.path.basename(info["filepath"])}
            for info in threadpool_info()]


def numpy_blas() -> dict | None:
    """The entry of :func:`blas` that is NumPy's own BLAS."""
    import numpy as np

    libs = os.path.dirname(np.__file__) + ".libs"
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    for info in threadpool_info():
        if info.get("user_api") == "blas" and info["filepath"].startswith(libs):
            keep = ("internal_api", "version", "architecture", "num_threads", "threading_layer")
            return {k: info.get(k) for k in keep}
    return None


def torch_info() -> dict | None:
    """PyTorch's version, threads and the ISA its CPU kernels (oneDNN) dispatch to."""
    try:
        import torch
    except ImportError:
        return None
    return {"version": torch.__version__, "threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "mkldnn": bool(torch.backends.mkldnn.is_available())}


def describe() -> dict:
    """One dict of everything above, plus Python's and NumPy's versions, the core count, the
    OpenBLAS environment variables in force, the ISA of tconv's compiled kernels and the load
    average (other processes sharing the cores move the times)."""
    import numpy as np

    from .methods import fast_native

    model, flags = _cpuinfo()
    return {
        "cpu": model, "cores": os.cpu_count(), "simd": simd_level(flags),
        "avx512f": "avx512f" in flags, "avx2": "avx2" in flags,
        "python": platform.python_version(), "numpy": np.__version__,
        "numpy_blas": numpy_blas(), "blas_pools": blas(),
        "openblas_env": {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                                     "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
                         if k in os.environ},
        "torch": torch_info(), "tconv_native_isa": fast_native.instruction_set(),
        # runnable processes averaged over 1, 5 and 15 minutes: other work on the machine
        "load_average": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg")
        else None,
    }


def one_line(hw: dict) -> str:
    """The hardware block as one line (printed above the bench's tables)."""
    nb = hw.get("numpy_blas") or {}
    torch = hw.get("torch") or {}
    env = ", ".join(f"{k}={v}" for k, v in (hw.get("openblas_env") or {}).items()) or "none"
    return (f"CPU: {hw.get('cpu')} ({hw.get('cores')} cores, {hw.get('simd')}); "
            f"NumPy {hw.get('numpy')} BLAS: {nb.get('internal_api')} {nb.get('version')} "
            f"kernel {nb.get('architecture')}, {nb.get('num_threads')} threads "
            f"({nb.get('threading_layer')}); OpenBLAS env: {env}; "
            f"PyTorch {torch.get('version')}: {torch.get('threads')} threads, oneDNN ISA "
            f"{torch.get('cpu_capability')}; tconv native kernels: {hw.get('tconv_native_isa')}"
            + (f"; load average {hw['load_average'][0]:.1f} (1 min), {hw['load_average'][2]:.1f}"
               f" (15 min) on {hw.get('cores')} cores" if hw.get("load_average") else ""))
