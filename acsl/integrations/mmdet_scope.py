"""The registry scope of acsl's mmdetection integration (docs/ARCHITECTURE.md, "mmdet integration"): types read
``acsl.<name>``, in a child registry under each of mmdet's."""

from __future__ import annotations

from mmengine.registry import Registry

SCOPE = "acsl"


def scoped(parent: Registry) -> Registry:
    """The registry of scope ``acsl`` under one of mmdet's (created once; a re-import reuses it)."""
    existing = parent.children.get(SCOPE)
    return existing if existing is not None else Registry(parent.name, parent=parent, scope=SCOPE)
