"""Targets for `tconv check` that misbehave in the ways a real kernel can: each computes the
transposed convolution correctly (``wrong_impls.correct``, written from the definition) or not
at all, and does one thing wrong around it."""
import os
import sys
import threading
import time

import numpy as np

from wrong_impls import correct


def zeroes_input(y, w, *args):
    """Zeroes its input in place, then returns the transposed convolution of the zeros."""
    y[...] = 0
    return correct(y, w, *args)


def scales_input_after(y, w, *args):
    """Right result; then doubles its weight in place."""
    x = correct(y, w, *args)
    w *= 2
    return x


def exits(y, w, *args):
    sys.exit(0)


def raises_keyboard_interrupt(y, w, *args):
    raise KeyboardInterrupt


def hangs(y, w, *args):
    time.sleep(3600)


def strings(y, w, *args):
    """An array of the right shape, of strings."""
    return np.full(correct(y, w, *args).shape, "1.0")


def nones(y, w, *args):
    """An object array of the right shape, of None."""
    return np.full(correct(y, w, *args).shape, None, dtype=object)


def nothing(y, w, *args):
    return None


def exits_process(y, w, *args):
    os._exit(0)


def aborts(y, w, *args):
    os.abort()


def aborts_with_groups(y, w, bias, stride, padding, output_padding, groups, dilation):
    """Kills its process on grouped specs only (as a framework aborting on some specs does)."""
    if groups > 1:
        os.abort()
    return correct(y, w, bias, stride, padding, output_padding, groups, dilation)


def forks(y, w, *args):
    """Forks; the copy returns zeros, the original the right result."""
    x = correct(y, w, *args)
    if os.fork() == 0:
        return np.zeros_like(x)
    os.wait()
    return x


def leaves_a_thread(y, w, *args):
    """Right result, and a non-daemon thread that never ends."""
    threading.Thread(target=time.sleep, args=(3600,), daemon=False).start()
    return correct(y, w, *args)
