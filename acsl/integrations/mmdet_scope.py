"""The registry scope of acsl's mmdetection integration (docs/ARCHITECTURE.md, "mmdet integration"): types read
``acsl.<name>``, in a child registry under each of mmdet's; and how a loss finds the head that builds it."""

from __future__ import annotations

import sys
import weakref

from mmengine.registry import Registry
from torch import nn

SCOPE = "acsl"


def scoped(parent: Registry) -> Registry:
    """The registry of scope ``acsl`` under one of mmdet's (created once; a re-import reuses it)."""
    existing = parent.children.get(SCOPE)
    return existing if existing is not None else Registry(parent.name, parent=parent, scope=SCOPE)


def head_being_built(loss: nn.Module, head_class: str) -> weakref.ReferenceType | None:
    """The mmdet head (an instance of a class named ``head_class``, e.g. ``BBoxHead`` or ``AnchorHead``, or of a
    subclass) whose constructor is building ``loss`` (mmdet builds ``loss_cls`` inside the head's ``__init__``),
    found on the call stack; None for a loss built on its own. A weak reference: the loss holds no submodule."""
    frame = sys._getframe(2)
    while frame is not None:
        candidate = frame.f_locals.get("self")
        if isinstance(candidate, nn.Module) and candidate is not loss and any(
                cls.__name__ == head_class for cls in type(candidate).__mro__):
            return weakref.ref(candidate)
        frame = frame.f_back
    return None
