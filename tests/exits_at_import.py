"""A target module that calls sys.exit(0) when imported."""
import sys

sys.exit(0)


def conv_transpose(y, w, *args):  # never reached
    return y
