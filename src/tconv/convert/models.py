"""Whole models: every transposed convolution of a model found, converted and audited.

A model is an ONNX file or ``ModelProto``, a ``.keras`` file or Keras model, or a torch
``nn.Module`` (or a ``.pt`` file it was saved to whole with ``torch.save``). Its framework finds
its transposed convolutions with their input shapes (``find_layers``); each is then converted
as :func:`tconv.convert.layer` converts one layer. Only those layers are converted: the rest of
the model (convolutions, normalisations, activations, the graph around them) is not, and the
result says so.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..spec import ConvSpecError
from .objects import LayerConversion, convert_read

#: What every model result says.
NOT_CONVERTED = ("only the transposed convolutions are converted, each to a layer of its own; "
                 "the rest of the model is not")


def _framework_of(model, source: str | None):
    from ..frameworks import owner

    framework = owner(model, source, "reads_model")
    if framework is not None:
        return framework
    what = (f"file {str(model)!r}" if isinstance(model, (str, Path))
            else f"object of type {type(model).__qualname__}")
    raise ConvSpecError(f"tconv reads no model from the {what}: give an ONNX file (.onnx), a "
                        f"Keras file (.keras), a torch nn.Module or a .pt file saved with "
                        f"torch.save(module)", "model")


def find(model, *, source: str | None = None, input_shape=None) -> tuple[str, list]:
    """``(framework, [(name, LayerRead or the reason it cannot be read), ...])``: the model's
    transposed convolutions, in the order of the model. ``input_shape``: the model's input
    shape (torch needs it: the layers' sizes come from a run on zeros of that shape)."""
    if isinstance(model, (str, Path)) and not Path(model).exists():
        raise ConvSpecError(f"model file {str(model)!r} does not exist", "model")
    framework = _framework_of(model, source)
    found = framework.find_layers(model, input_shape=input_shape)
    return framework.name, found


@dataclass(frozen=True)
class ModelConversion:
    """Every transposed convolution of a model, converted: ``layers`` holds per layer its name
    and its :class:`~tconv.convert.objects.LayerConversion`, or the reason no target layer
    exists (a string)."""

    source: str
    to: str
    layers: tuple[tuple[str, LayerConversion | str], ...]
    note: str = NOT_CONVERTED

    @property
    def passed(self) -> bool:
        """Every layer converted and (where checked) equal to its source."""
        return all(not isinstance(r, str) and (r.check is None or r.check.passed)
                   for _, r in self.layers)

    def to_dict(self) -> dict:
        return {"from": self.source, "to": self.to, "note": self.note, "passed": self.passed,
                "layers": [{"name": name, "refused": r} if isinstance(r, str)
                           else {"name": name, **r.to_dict()} for name, r in self.layers]}


def model(path_or_obj, to: str, *, source: str | None = None, input_shape=None,
          check: bool = True, seed: int = 0, **options) -> ModelConversion:
    """Find every transposed convolution of a model and convert each to ``to``.

    Parameters
    ----------
    path_or_obj
        An ONNX file or ``onnx.ModelProto``, a ``.keras`` file or Keras model, a torch
        ``nn.Module`` or a ``.pt`` file holding one.
    to : str
        The target framework.
    input_shape : sequence of int, optional
        The model's input shape (needed for torch, whose modules do not know their sizes).
    check : bool
        Run each source layer and its conversion on random data and compare them.
    **options
        Those of :func:`tconv.convert.convert`.

    Examples
    --------
    >>> import torch
    >>> from tconv import convert
    >>> net = torch.nn.Sequential(torch.nn.ConvTranspose2d(8, 4, 4, 2, 1), torch.nn.ReLU(),
    ...                           torch.nn.ConvTranspose2d(4, 1, 4, 2, 1))
    >>> result = convert.model(net, to="keras", input_shape=(1, 8, 4, 4))
    >>> [(name, r.output_shape) for name, r in result.layers], result.passed
    ([('0', (1, 8, 8, 4)), ('2', (1, 16, 16, 1))], True)
    """
    framework, found = find(path_or_obj, source=source, input_shape=input_shape)
    layers = []
    for name, read in found:
        if isinstance(read, str):          # a layer tconv could not read: the reason
            layers.append((name, read))
            continue
        try:
            layers.append((name, convert_read(read, to, check=check, seed=seed, **options)))
        except ConvSpecError as error:
            layers.append((name, str(error)))
    return ModelConversion(framework, to, tuple(layers))
