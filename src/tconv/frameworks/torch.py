"""PyTorch: autograd, ``torch.nn.grad.conv{1,2,3}d_input``, ``F.conv_transpose{1,2,3}d`` and the
``nn.ConvTranspose{1,2,3}d`` layer.

PyTorch's layouts and meanings are tconv's, so the only conventions to translate are its limits:
convolutions of 1-3 spatial dims, symmetric integer padding in the gradient and transposed
functions (autograd can run behind an explicit ``F.pad``), and floating dtypes only. Its layer
keeps the window ``[padding, F + output_padding - padding)`` of the full result: symmetric up to
output_padding, which is why converting to it may need a crop.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from ..convert.code import Code, call_text
from ..convert.layer import (compact, ints, iterable, make, need_dims, padding_words, shape_arg,
                             show)
from ..convert.layout import Layout
from ..convert.window import (Dim, Pair, closest, layer_dims, near, spec_dims, windows,
                              worth_trying)
from ..spec import ConvSpec, ConvSpecError
from . import Framework, NotExpressible, first_line, is_file, module_of, read_or_reason

_DTYPES = ("float16", "float32", "float64")


# -- the layer ------------------------------------------------------------------------------------

def _torch_window(dim: Dim, padding: int, output_padding: int) -> Pair:
    """``nn.ConvTransposeNd``: crop ``padding`` at both ends, add output_padding at the end."""
    return padding, dim.full + output_padding - padding


def _torch_candidates(dim: Dim, want: Pair):
    """``((padding, output_padding), window)`` that can keep ``want`` best: padding up to the
    start (more would only crop cells the source keeps), output_padding below the limit, an
    output of at least one cell. The cost is piecewise linear in the padding with its corners
    at the targets below, and for one padding the window's stop grows with output_padding, so
    only a few of the stride x start pairs are tried."""
    start, stop = want
    corners = (start, dim.full - stop, dim.full - stop + dim.limit - 1,
               dim.limit - 1, (dim.full + dim.limit - 2) // 2)
    for p in near(range(start + 1), *corners):
        ops = range(max(2 * p + 1 - dim.full, 0), dim.limit)

        def window(op, p=p):
            return _torch_window(dim, p, op)
        for op in worth_trying(ops, window, want, dim.full):
            yield (p, op), window(op)


def _torch_output_padding(call: str, dims, pads, output_size) -> tuple[int, ...]:
    """The module's ``forward(x, output_size)``: sizes from the minimum to stride - 1 more."""
    size = shape_arg("output_size", output_size)
    size = size[2:] if len(size) == len(dims) + 2 else size
    if len(size) != len(dims):
        raise ConvSpecError(f"{call}: output_size must have {len(dims)} spatial sizes, got {size}")
    ops = []
    for i, (n, dim, p) in enumerate(zip(size, dims, pads)):
        smallest = dim.full - 2 * p
        if not smallest <= n < smallest + dim.stride:
            raise ConvSpecError(
                f"{call}: output_size={show(size)} is out of range in spatial dim {i}: valid "
                f"sizes are {smallest}..{smallest + dim.stride - 1}")
        ops.append(n - smallest)
    return tuple(ops)


class Torch(Framework):
    """PyTorch: three ways, the bench's reference, and ``nn.ConvTranspose{1,2,3}d``."""

    name = "torch"
    aliases = ("pytorch",)
    title = "PyTorch"
    packages = ("torch",)
    rank = 10
    flag_call = "torch.nn.ConvTransposeNd"
    flags_taken = ("--layer-output-padding", "--layer-output-size", "--groups")
    shape_args = ("input_shape",)
    crop_reason = ("torch.nn.ConvTransposeNd crops `padding` cells at both ends and adds "
                   "output_padding cells at the end only, so it keeps only windows symmetric up "
                   "to output_padding (keras-core#774, onnx2torch#52, #68).")

    ways = ("torch autograd", "torch.nn.grad.conv{n}d_input", "F.conv_transpose{n}d")

    @staticmethod
    def input_grad_ways(spec: ConvSpec, w: np.ndarray, g: np.ndarray) -> dict:
        names = Torch.way_names(spec.ndim)
        if spec.ndim > 3:
            return dict.fromkeys(names, NotExpressible(
                f"torch has 1-d, 2-d and 3-d convolutions only, this spec has {spec.ndim}"))
        if g.dtype.name not in _DTYPES:
            return dict.fromkeys(names, NotExpressible(
                f"torch CPU convolutions take {', '.join(_DTYPES)}, not {g.dtype.name}"))
        import torch
        import torch.nn.functional as F

        nd = spec.ndim
        wt = torch.from_numpy(np.ascontiguousarray(w))
        gt = torch.from_numpy(np.ascontiguousarray(g))
        conv = getattr(F, f"conv{nd}d")
        result = {}

        # autograd: pad explicitly (any low/high), convolve, keep the outputs y has, backpropagate.
        x = torch.zeros(spec.input_shape, dtype=gt.dtype, requires_grad=True)
        # F.pad wants the last dim first
        pads = [p for lo_hi in reversed(spec.padding) for p in lo_hi]
        out = conv(F.pad(x, pads), wt, stride=spec.stride, dilation=spec.dilation,
                   groups=spec.groups)
        out = out[(slice(None),) * 2 + tuple(slice(0, m) for m in spec.output_size)]
        (grad,) = torch.autograd.grad(out, x, gt)
        result[names[0]] = grad.numpy()

        padding = spec.symmetric_padding
        if padding is None:
            why = NotExpressible(f"torch pads symmetrically; padding {spec.padding} is not")
            result[names[1]] = result[names[2]] = why
            return result
        if spec.output_padding_exceeds_stride:
            result[names[1]] = NotExpressible(
                f"input size {spec.input_size} is not a size the forward convolution maps to "
                f"{spec.output_size} (output_padding {spec.output_padding} >= stride "
                f"{spec.stride})")
        else:
            grad_input = getattr(torch.nn.grad, f"conv{nd}d_input")
            result[names[1]] = grad_input(spec.input_shape, wt, gt, stride=spec.stride,
                                          padding=padding, dilation=spec.dilation,
                                          groups=spec.groups).numpy()
        transpose = getattr(F, f"conv_transpose{nd}d")
        result[names[2]] = transpose(gt, wt, stride=spec.stride, padding=padding,
                                     output_padding=spec.output_padding, groups=spec.groups,
                                     dilation=spec.dilation).numpy()
        return result

    @staticmethod
    def benchmark_callables(op: str, spec: ConvSpec, x: np.ndarray, w: np.ndarray,
                            g: np.ndarray) -> dict:
        """Zero-argument callables for ``tconv bench`` (inputs converted once), per ``op``:
        ``input_grad`` (dL/dx: conv_transpose and autograd), ``conv`` (the forward convolution) or
        ``weight_grad`` (dL/dw: torch.nn.grad and autograd). Autograd times the forward as well."""
        if spec.ndim > 3 or g.dtype.name not in _DTYPES or spec.symmetric_padding is None:
            return {}
        import torch
        import torch.nn.functional as F

        nd = spec.ndim
        xt, wt, gt = (torch.from_numpy(np.ascontiguousarray(a)) for a in (x, w, g))
        kw = dict(stride=spec.stride, padding=spec.symmetric_padding, dilation=spec.dilation,
                  groups=spec.groups)
        conv = getattr(F, f"conv{nd}d")
        keep = (slice(None),) * 2 + tuple(slice(0, m) for m in spec.output_size)

        def autograd(x_in: torch.Tensor, w_in: torch.Tensor, wrt: torch.Tensor):
            def run():
                return torch.autograd.grad(conv(x_in, w_in, **kw)[keep], wrt, gt)[0]
            return run

        if op == "conv":
            def forward():
                with torch.no_grad():
                    return conv(xt, wt, **kw)[keep]
            return {"torch conv": forward}
        if op == "weight_grad":
            w_in = wt.clone().requires_grad_(True)
            ways = {"torch autograd": autograd(xt, w_in, w_in)}
            if not spec.output_padding_exceeds_stride:
                # (otherwise x has cells past the last window and nn.grad refuses g's shape)
                weight = getattr(torch.nn.grad, f"conv{nd}d_weight")
                ways["torch nn.grad"] = lambda: weight(xt, spec.weight_shape, gt, **kw)
            return ways
        transpose = getattr(F, f"conv_transpose{nd}d")

        def conv_transpose():
            with torch.no_grad():
                return transpose(gt, wt, output_padding=spec.output_padding, **kw)

        x_in = torch.zeros_like(xt, requires_grad=True)
        return {"torch conv_transpose": conv_transpose, "torch autograd": autograd(x_in, wt, x_in)}

    @staticmethod
    def read(input_shape, in_channels, out_channels, kernel_size, stride=1, padding=0,
             output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
             output_size=None):
        """``torch.nn.ConvTranspose{1,2,3}d(...)`` applied to an input of ``input_shape``.

        The arguments are the module's (``output_size`` is the one of its ``forward``); for
        ``F.conv_transpose{N}d(x, w, ...)`` pass ``in_channels = w.shape[0]``,
        ``out_channels = w.shape[1] * groups`` and ``kernel_size = w.shape[2:]``. Data
        ``(N, C, *sp)``, weight ``(C_in, C_out/groups, *k)``: tconv's own conventions.
        """
        input_shape = shape_arg("input_shape", input_shape)
        nd = len(input_shape) - 2
        call = f"torch.nn.ConvTranspose{nd}d"
        need_dims("torch.nn.ConvTransposeNd", nd)
        if padding_mode != "zeros":
            raise ConvSpecError(f"{call} supports padding_mode='zeros' only, got {padding_mode!r}")
        if isinstance(padding, str) or any(isinstance(p, Iterable) for p in iterable(padding)):
            raise ConvSpecError(
                f"{call} takes padding as an int or one int per dim (it crops both ends alike), "
                f"got padding={padding!r}")
        if input_shape[1] != in_channels:
            raise ConvSpecError(
                f"{call}: input_shape {input_shape} has {input_shape[1]} channels, in_channels is "
                f"{in_channels}")
        kernel, stride_, dilation_ = (ints("kernel_size", kernel_size, nd),
                                      ints("stride", stride, nd), ints("dilation", dilation, nd))
        pads = ints("padding", padding, nd, 0)
        dims = layer_dims(input_shape[2:], kernel, stride_, dilation_)
        if output_size is not None:
            ops = _torch_output_padding(call, dims, pads, output_size)
        else:
            ops = ints("output_padding", output_padding, nd, 0)
            for i, (op, dim) in enumerate(zip(ops, dims)):
                if op >= dim.limit:
                    raise ConvSpecError(
                        f"{call}: output_padding={show(ops)} must be smaller than stride or "
                        f"dilation ({dim.limit} in spatial dim {i})")
        args = dict(input_shape=input_shape, in_channels=in_channels, out_channels=out_channels,
                    kernel_size=kernel_size, stride=stride, padding=padding,
                    output_padding=output_padding, groups=groups, bias=bias, dilation=dilation,
                    padding_mode=padding_mode, output_size=output_size)
        wins = [_torch_window(dim, p, op) for dim, p, op in zip(dims, pads, ops)]
        return make("torch", call, args, batch=input_shape[0], c_in=in_channels, c_out=out_channels,
                    kernel=kernel, stride=stride_, dilation=dilation_, groups=groups,
                    size=input_shape[2:], wins=wins, layout=Layout.plain(nd), bias=bias)

    @staticmethod
    def write(spec: ConvSpec, options: dict) -> dict:
        """Per dim the (padding, output_padding) keeping the closest window; padding beyond the
        source's start would only add zeros at the start, so it stays <= start."""
        need_dims("torch.nn.ConvTransposeNd", spec.ndim)
        picks = []
        for want, dim in zip(windows(spec), spec_dims(spec)):
            picks.append(closest(want, dim.full, _torch_candidates(dim, want))[0])
        # the layer's input is the forward output y: its channels are spec.out_channels
        return dict(input_shape=spec.output_shape, in_channels=spec.out_channels,
                    out_channels=spec.in_channels,
                    kernel_size=compact(spec.kernel_size), stride=compact(spec.stride),
                    padding=compact(p for p, _ in picks),
                    output_padding=compact(op for _, op in picks), groups=spec.groups,
                    bias=options.get("bias", False),
                    dilation=compact(spec.dilation))

    @staticmethod
    def from_flags(size, k, in_channels, out_channels, stride, padding, output_padding,
                   output_shape, dilation, groups, batch, bias=False, **_):
        mode, explicit = padding_words(0 if padding is None else padding)
        if mode is not None or any(isinstance(p, Iterable) for p in iterable(explicit)):
            raise ConvSpecError(f"torch.nn.ConvTransposeNd takes --padding as ints (it crops both "
                                f"ends alike), got {padding!r}")
        return Torch.read((batch, in_channels, *size), in_channels, out_channels, compact(k),
                          stride, explicit, 0 if output_padding is None else output_padding,
                          groups, bias, dilation, output_size=output_shape)

    def code(self, layer, crop, bias, runnable: bool = False):
        """``nn.ConvTransposeNd`` with the weight (and bias) copied; with a crop or an
        ``output_size``, a module holding it that applies them (the bias after any zero cells
        added). ``forward`` runs it in ``x``'s dtype."""
        from ..convert.code import crop_lines, has_pads

        after = bias and has_pads(crop)          # zero cells get the bias too: add it after them
        kwargs = {k: v for k, v in layer.kwargs.items()
                  if k not in ("output_size", "padding_mode", "bias")}
        kwargs["bias"] = bool(bias) and not after
        kwargs["dtype"] = Code("getattr(torch, weight.dtype.name)")   # float64 weights stay so
        setup = [f"conv = {call_text(layer.call, [], kwargs)}", "with torch.no_grad():",
                 "    conv.weight.copy_(torch.tensor(weight))"]
        if kwargs["bias"]:
            setup.append("    conv.bias.copy_(torch.tensor(bias))")
        post = crop_lines(layer, crop, "self.bias" if after else None)
        size = layer.args.get("output_size")
        if not post and size is None:
            setup.append("layer = conv.eval()")
        else:
            call = "self.conv(x)" if size is None else f"self.conv(x, output_size={list(size)})"
            setup += [
                "", "", "class TransposedConv(torch.nn.Module):",
                f'    """{layer.call}' + (", then the crop" if post else "")
                + (" and the bias" if after else "") + '."""', "",
                "    def __init__(self):", "        super().__init__()", "        self.conv = conv"]
            if after:
                setup.append("        self.bias = torch.nn.Parameter(torch.tensor(bias))")
            setup += ["", "    def forward(self, x):", f"        y = {call}",
                      *[f"        {line}" for line in post], "        return y", "",
                      "", "layer = TransposedConv().eval()"]
        body = ["x = torch.as_tensor(x)", "with torch.no_grad():",
                "    return layer.to(x.dtype)(x).numpy()    # in x's dtype (float64 too)"]
        return ["import torch"], setup, body

    def pad_code(self, widths) -> str:
        flat = [v for pair in reversed(widths) for v in pair]   # F.pad: the last axis first
        while flat[-2:] == [0, 0]:
            flat = flat[:-2]
        return f"y = torch.nn.functional.pad(y, {flat})"

    # -- layer objects ----------------------------------------------------------------------------

    def reads_object(self, obj) -> bool:
        return module_of(obj) == "torch"

    def read_layer(self, obj, input_shape=None, output_size=None, **_):
        """``nn.ConvTranspose{1,2,3}d`` (and the ``output_size`` of its call) on ``input_shape``:
        its arguments, ``weight`` ``(C_in, C_out/groups, *k)`` and ``bias``."""
        import torch

        from ..convert.objects import LayerRead, input_shape_arg

        if not isinstance(obj, torch.nn.modules.conv._ConvTransposeNd):
            raise ConvSpecError(f"tconv reads torch.nn.ConvTranspose1d/2d/3d, not "
                                f"{type(obj).__name__}", "obj")
        nd = obj.weight.dim() - 2
        shape = input_shape_arg(f"torch.nn.ConvTranspose{nd}d", input_shape, obj.in_channels,
                                nd, Layout.plain(nd))
        layer = Torch.read(shape, obj.in_channels, obj.out_channels, obj.kernel_size,
                           obj.stride, obj.padding, obj.output_padding, obj.groups,
                           obj.bias is not None, obj.dilation, obj.padding_mode, output_size)
        size = None if output_size is None else list(output_size)

        def run(x):
            with torch.no_grad():
                x = torch.as_tensor(x).to(obj.weight.dtype)
                return obj(x, output_size=size).numpy()

        return LayerRead(layer, _numpy(obj.weight), None if obj.bias is None else
                         _numpy(obj.bias), run)

    def reads_model(self, model) -> bool:
        return is_file(model, ".pt", ".pth") or module_of(model) == "torch"

    def find_layers(self, model, input_shape=None) -> list:
        """The ``nn.ConvTranspose{1,2,3}d`` of a module (or of a ``.pt`` file holding a module
        saved whole with ``torch.save``, which unpickles it: only for files you trust), with the
        input shapes and ``output_size`` a run on zeros of ``input_shape`` gives them."""
        import torch

        if is_file(model, ".pt", ".pth"):
            try:
                model = torch.load(str(model), weights_only=False)   # the module, pickled
            except Exception as error:
                raise ConvSpecError(f"torch.load({str(model)!r}) failed: {type(error).__name__}: "
                                    f"{first_line(error)} (a module saved whole needs its class "
                                    f"importable)", "model") from None
        if not isinstance(model, torch.nn.Module):
            raise ConvSpecError(f"the .pt file holds a {type(model).__name__}, not a module "
                                f"saved whole (torch.save(module))", "model")
        if input_shape is None:
            raise ConvSpecError("a torch module does not know its input size: give the model's "
                                "input shape (input_shape=, --model-input)", "input_shape")
        kinds = torch.nn.modules.conv._ConvTransposeNd
        seen: dict = {}

        def hook(module, args, kwargs):
            size = kwargs.get("output_size", args[1] if len(args) > 1 else None)
            seen.setdefault(id(module), (tuple(args[0].shape), size))

        handles = [m.register_forward_pre_hook(hook, with_kwargs=True)
                   for m in model.modules() if isinstance(m, kinds)]
        training = model.training
        dtype = next((p.dtype for p in model.parameters()), torch.float32)
        try:
            with torch.no_grad():
                model.eval()(torch.zeros(tuple(input_shape), dtype=dtype))
        except Exception as error:      # the user's module on the user's shape
            raise ConvSpecError(f"the module raised {type(error).__name__} on zeros of "
                                f"input_shape {tuple(input_shape)}: {first_line(error)}",
                                "input_shape") from None
        finally:
            model.train(training)
            for handle in handles:
                handle.remove()
        return [(name or type(m).__name__,
                 read_or_reason(self.read_layer, m, input_shape=seen[id(m)][0],
                                output_size=seen[id(m)][1]))
                for name, m in model.named_modules() if id(m) in seen]


def _numpy(tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy().copy()
