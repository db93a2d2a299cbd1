"""Transposed convolutions with PyTorch's signature, each with one deliberate bug of the kind real
backends shipped, and one without. Written from the definition, independently of tconv."""
import numpy as np


def _transpose(y, w, stride, padding, output_padding, groups, dilation, *, flip=False,
               extent=None, interleaved_groups=False, ignore_dilation=False,
               ignore_output_padding=False):
    y, w = np.asarray(y), np.asarray(w)
    nd = y.ndim - 2
    k = w.shape[2:]
    d = (1,) * nd if ignore_dilation else dilation
    op = (0,) * nd if ignore_output_padding else output_padding
    ext = [extent(kk, dd) if extent else dd * (kk - 1) + 1 for kk, dd in zip(k, d)]
    size = [(n - 1) * s - 2 * p + e + o for n, s, p, e, o in zip(y.shape[2:], stride, padding,
                                                                   ext, op)]
    c_in, per_group = y.shape[1] // groups, w.shape[1]
    x = np.zeros((y.shape[0], per_group * groups) + tuple(size))
    kernel = w[(slice(None),) * 2 + (slice(None, None, -1),) * nd] if flip else w
    for g in range(groups):
        rows = range(g, y.shape[1], groups) if interleaved_groups else range(g * c_in,
                                                                              (g + 1) * c_in)
        for c, row in enumerate(rows):
            for pos in np.ndindex(*y.shape[2:]):
                for tap in np.ndindex(*k):
                    q = [i * s + j * dd - p for i, s, j, dd, p in zip(pos, stride, tap, d,
                                                                       padding)]
                    if all(0 <= qq < n for qq, n in zip(q, size)):
                        x[(slice(None), slice(g * per_group, (g + 1) * per_group)) + tuple(q)] += (
                            y[(slice(None), g * c_in + c) + pos][:, None]
                            * kernel[(row, slice(None)) + tap])
    return x


def correct(y, w, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    return _transpose(y, w, stride, padding, output_padding, groups, dilation)


def flipped_kernel(y, w, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Flips the kernel as if the scatter form needed the convolution form's flip."""
    return _transpose(y, w, stride, padding, output_padding, groups, dilation, flip=True)


def no_output_padding(y, w, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                      dilation=1):
    return _transpose(y, w, stride, padding, output_padding, groups, dilation,
                      ignore_output_padding=True)


def dilated_size_k_plus_d(y, w, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                          dilation=1):
    """The dilated kernel size taken as k + d - 1 (onnxruntime#2518)."""
    return _transpose(y, w, stride, padding, output_padding, groups, dilation,
                      extent=lambda k, d: k + d - 1)


def interleaved_groups(y, w, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                       dilation=1):
    """Weight rows of a group taken with a stride instead of as a block: right only while each
    group has one input channel (compare onnx PR #8446)."""
    return _transpose(y, w, stride, padding, output_padding, groups, dilation,
                      interleaved_groups=True)


def no_dilation(y, w, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    return _transpose(y, w, stride, padding, output_padding, groups, dilation,
                      ignore_dilation=True)


def input_grad_via_conv_transpose(input_size, weight, grad_output, stride=1, padding=0,
                                  dilation=1, groups=1):
    """torch.nn.grad-style signature, correct: output_padding from the input size."""
    out = []
    for n, g, s, p, d, k in zip(input_size[2:], grad_output.shape[2:], stride, padding,
                                dilation, weight.shape[2:]):
        out.append(n - ((g - 1) * s - 2 * p + d * (k - 1) + 1))
    return correct(grad_output, weight, None, stride, padding, tuple(out), groups, dilation)


def raises(y, w, *args):
    raise RuntimeError("not implemented for this layout")
