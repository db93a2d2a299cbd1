"""Import torchvision where its compiled operators do not load, for the converters that need it.

onnx2torch and nobuco import torchvision at import time, only for their NMS and RoIAlign
converters. PyPI's torchvision wheel for torch 2.13.0 is a CUDA build: beside the CPU build of
torch its ``_C`` extension does not load (it links ``libc10_cuda.so``), which torchvision itself
tolerates (its operators raise "Couldn't load custom C++ ops" when called), except that its
``_meta_registrations`` then registers a fake kernel for ``torchvision::nms`` and
``torchvision::qnms``, which no longer exist: ``import torchvision`` raises
"operator torchvision::nms does not exist" (pytorch/pytorch#122494).

:func:`import_torchvision` declares the schemas of those two operators (as torchvision's C++
declares them) when the extension did not load, so that the Python package imports; NMS and
RoIAlign still raise torchvision's own error if anything calls them. Nothing tconv converts uses
them. With a torchvision whose extension loads, it is a plain import.
"""
from __future__ import annotations

import sys

_SCHEMAS = ("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
            "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
_library = None   # kept alive: dropping the Library object would drop the declarations


def import_torchvision():
    """``import torchvision``, declaring its two missing operators if its extension failed."""
    global _library
    import torch

    try:
        import torchvision
    except RuntimeError as error:
        if "torchvision::" not in str(error) or _library is not None:
            raise
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]                 # the half-imported package
        _library = torch.library.Library("torchvision", "FRAGMENT")
        for schema in _SCHEMAS:
            _library.define(schema)
        import torchvision
    return torchvision
