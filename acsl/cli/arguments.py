"""Command-line arguments ↔ experiment specs: ``key=value`` options, the spec of ``acsl train``/``eval``
arguments, and the arguments that name a spec (what a torchrun launch passes to every process)."""

from __future__ import annotations

import argparse
import json

from ..runs import ExperimentSpec, OptionValue


def parse_option(text: str, what: str = "loss option") -> tuple[str, OptionValue | None]:
    """``key=value`` from the command line; the value is read as JSON (0.7, 4, true, null, "name"), else
    as a plain string. The spec then parses it into the type the option declares (``acsl.runs.options``),
    so "abc" for a number is refused there, naming the option."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"{what} {text!r} is not of the form key=value (e.g. xi=0.7)")
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    if parsed is not None and not isinstance(parsed, (int, float, bool, str)):
        raise ValueError(f"{what} {key}: expected a number, true/false, null or a string, got {value!r}")
    return key, parsed


def spec_from_arguments(args: argparse.Namespace) -> ExperimentSpec:
    """The spec that ``acsl train``/``acsl eval`` arguments name."""
    options: dict = dict(parse_option(text) for text in args.option)
    if args.xi is not None:
        options["xi"] = args.xi
    if args.statistic_free:
        options["statistic_free"] = True
    return ExperimentSpec(profile=args.profile, loss=args.loss, loss_options=tuple(options.items()),
                          stage=args.stage, schedule=args.schedule, seed=args.seed, batch_size=args.batch_size,
                          cached=args.cached_stage2, sampler=args.sampler, classifier=args.classifier,
                          sampler_options=tuple(parse_option(text, "sampler option") for text in args.sampler_option),
                          detector=tuple(parse_option(text, "detector field") for text in args.detector),
                          **bound_arguments(args))


def bound_arguments(args: argparse.Namespace) -> dict:
    """The spec fields of a bounded run (``--max-iters``, ``--subset``) and of the smaller cache."""
    return {"max_iters": getattr(args, "max_iters", None), "subset": getattr(args, "subset", None),
            "cache_flips": not getattr(args, "cache_no_flips", False)}


def spec_arguments(spec: ExperimentSpec) -> list[str]:
    """``acsl train`` / ``acsl eval`` arguments that name ``spec`` (the inverse of ``spec_from_arguments``)."""
    arguments = ["--profile", spec.profile, "--loss", spec.loss, "--stage", str(spec.stage),
                 "--schedule", str(spec.schedule), "--seed", str(spec.seed)]
    if spec.batch_size is not None:
        arguments += ["--batch-size", str(spec.batch_size)]
    if spec.cached:
        arguments.append("--cached-stage2")
    if spec.sampler != "uniform":
        arguments += ["--sampler", spec.sampler]
    for key, value in spec.sampler_options:
        arguments += ["--sampler-option", f"{key}={json.dumps(value)}"]
    if spec.classifier != "stage1":
        arguments += ["--classifier", spec.classifier]
    for key, value in spec.detector:
        arguments += ["--detector", f"{key}={json.dumps(value)}"]
    for key, value in spec.loss_options:
        arguments += ["--option", f"{key}={json.dumps(value)}"]
    for flag, value in (("--max-iters", spec.max_iters), ("--subset", spec.subset)):
        if value is not None:
            arguments += [flag, str(value)]
    if not spec.cache_flips:
        arguments.append("--cache-no-flips")
    return arguments
