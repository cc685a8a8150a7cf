"""Typed options of an experiment spec: detector fields, loss options and sampler options, each parsed into
the type its owner declares (``acsl.config.parse_typed``) before anything is built, so a bad value fails
at once with a message naming the option and the value (docs/ARCHITECTURE.md, "How a run flows", step 1).

- detector fields: the annotations of ``acsl.config.DetectorConfig`` (whose ``__post_init__`` checks ranges);
- loss options: the keyword parameters of the loss class's constructor beyond the training set's statistics,
  typed by their annotations (the constructors check ranges);
- sampler options: the keyword parameters of the sampler class's constructor beyond the images and the seed.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Iterable
from typing import Any

from ..config import detector_field_types, parse_typed
from ..data.samplers import ClassBalancedSampler, RepeatFactorSampler, UniformSampler
from ..losses import loss_class

#: Constructor parameters that are not options: the class count and the training set's statistics.
_LOSS_STATISTICS = {"self", "num_classes", "class_frequencies", "class_image_counts", "class_instance_counts",
                    "num_images"}
_SAMPLER_INPUTS = {"self", "image_labels", "num_images", "seed"}
_SAMPLER_CLASSES = {"uniform": UniformSampler, "repeat_factor": RepeatFactorSampler,
                    "class_balanced": ClassBalancedSampler}

Pairs = tuple[tuple[str, Any], ...]


def declared_options(cls: type, excluded: set[str]) -> dict[str, Any]:
    """The keyword options of ``cls``'s constructor and their declared types (the default's type where a
    parameter has no annotation)."""
    hints = typing.get_type_hints(cls.__init__)
    options = {}
    for name, parameter in inspect.signature(cls.__init__).parameters.items():
        if name in excluded or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        options[name] = hints.get(name, type(parameter.default) if parameter.default is not parameter.empty else Any)
    return options


def _typed(pairs: Iterable[tuple[str, Any]], declared: dict[str, Any], what: str, refusal: str) -> Pairs:
    values = dict(pairs)
    unknown = sorted(set(values) - set(declared))
    if unknown:
        takes = ", ".join(sorted(declared)) or "none"
        raise ValueError(f"{refusal} takes no option(s) {', '.join(f'{k}={values[k]!r}' for k in unknown)}; "
                         f"it takes {takes}")
    return tuple(sorted((key, parse_typed(value, declared[key], f"{what} {key}")) for key, value in values.items()))


def typed_loss_options(loss: str, pairs: Iterable[tuple[str, Any]]) -> Pairs:
    """``pairs`` of loss ``loss`` in their declared types, sorted by name."""
    declared = declared_options(loss_class(loss), _LOSS_STATISTICS)
    return _typed(pairs, declared, f"loss {loss!r} option", f"bad options for loss {loss!r}: it")


def typed_sampler_options(sampler: str, pairs: Iterable[tuple[str, Any]]) -> Pairs:
    """``pairs`` of sampler ``sampler`` in their declared types, sorted by name."""
    if sampler not in _SAMPLER_CLASSES:
        raise ValueError(f"unknown sampler {sampler!r}; choose one of {', '.join(_SAMPLER_CLASSES)}")
    declared = declared_options(_SAMPLER_CLASSES[sampler], _SAMPLER_INPUTS)
    return _typed(pairs, declared, f"sampler {sampler!r} option", f"sampler {sampler!r}")


def typed_detector_fields(pairs: Iterable[tuple[str, Any]]) -> Pairs:
    """Detector overrides in ``DetectorConfig``'s declared types, sorted by name."""
    declared = detector_field_types()
    values = dict(pairs)
    unknown = sorted(set(values) - set(declared))
    if unknown:
        raise ValueError(f"unknown detector field(s) {', '.join(unknown)}; DetectorConfig has {', '.join(sorted(declared))}")
    return tuple(sorted((key, parse_typed(value, declared[key], f"detector field {key}")) for key, value in values.items()))
