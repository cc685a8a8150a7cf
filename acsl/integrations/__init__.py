"""Adapters that make ``acsl`` usable from other detection frameworks (docs/ARCHITECTURE.md, "mmdet
integration").

Each module is imported only by that framework's users (``acsl.integrations.mmdet`` by an mmdet config's
``custom_imports``); nothing in ``acsl`` imports this package, and importing the package itself imports no
framework.
"""
