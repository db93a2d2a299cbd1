"""The optional compiled kernels of the ``fast_native`` method (the rest is in pyproject.toml).

``tconv._native`` is built with the compiler's generic flags (no ``-march=native``): it carries
AVX-512, AVX2 and baseline versions of each kernel and picks one at import. The extension is
optional: where no C compiler is found the build goes on without it, and tconv runs its NumPy
methods (``tconv.methods.fast_native.AVAILABLE`` is then False).
"""
from setuptools import Extension, setup

setup(ext_modules=[Extension(
    "tconv._native", sources=["src/tconv/_native.c"], depends=["src/tconv/_native_kernels.h"],
    extra_compile_args=["-O3", "-std=gnu11", "-ffp-contract=fast", "-Wno-psabi"], optional=True)])
