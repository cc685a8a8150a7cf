"""The CPU kernels every process of a report trains in, pinned to one instruction-set level.

docs/ARCHITECTURE.md, "The same numbers on any machine": CPU training is chaotic, so the vector width of
torch's kernels (ATen's CPU capability), MKL's code branch, oneDNN's ISA and numpy's SIMD dispatch each
decide the table. ``pinned_environment`` is the environment that fixes them at AVX2 on x86-64 (the level
every x86-64 server of the last decade has); it must be in a process's environment before torch or numpy
is imported, so ``acsl reproduce`` puts it into the environment its kernels start with and
``acsl.cli.launch`` into the environment of torchrun's ranks (``process_environment``).

The pins win over a user's own value of these variables (``overridden`` names what was replaced): a stray
``ATEN_CPU_CAPABILITY=avx512`` left over from profiling would otherwise change the table silently. The one
way out is explicit, ``ACSL_CPU_PINNING=off``, and it is recorded in the provenance like the pins.

Layer 0: no torch import (numpy only inside ``numpy_features_above_avx2``).
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from pathlib import Path

#: The instruction-set level the kernels are pinned to on x86-64.
PINNED_LEVEL = "AVX2"
#: ``ACSL_CPU_PINNING=off`` (or 0, false, no) leaves the kernels at each library's own choice.
SWITCH = "ACSL_CPU_PINNING"
OFF_VALUES = ("off", "0", "false", "no")
#: The variables the pinning sets, in the order the provenance shows them.
VARIABLES = ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "NPY_DISABLE_CPU_FEATURES")
#: MKL's conditional-numerical-reproducibility branch: AVX2 is the branch of Intel CPUs with AVX2; on other
#: CPUs (AMD) MKL runs its AUTO branch under this setting (docs/ARCHITECTURE.md, "The same numbers on any
#: machine", says what that leaves open and why COMPATIBLE is not used).
MKL_BRANCH = "AVX2"
CPUINFO = Path("/proc/cpuinfo")
X86 = ("x86_64", "amd64", "x64")


def _cpuinfo_field(name: str, cpuinfo: Path = CPUINFO) -> str | None:
    """The first value of ``name`` in /proc/cpuinfo, or None (no such file or field)."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() == name:
                    return value.strip()
    except OSError:
        return None
    return None


def cpu_model(cpuinfo: Path = CPUINFO) -> str:
    """The CPU's model name (/proc/cpuinfo ``model name``, else ``platform.processor()``, else the
    architecture), e.g. ``"AMD EPYC 7B13"``."""
    return _cpuinfo_field("model name", cpuinfo) or platform.processor() or platform.machine() or "unknown"


def cpu_flags(cpuinfo: Path = CPUINFO) -> frozenset[str] | None:
    """The CPU's feature flags (/proc/cpuinfo ``flags``), or None where they cannot be read (not Linux)."""
    flags = _cpuinfo_field("flags", cpuinfo)
    return None if flags is None else frozenset(flags.split())


def numpy_features_above_avx2() -> tuple[str, ...]:
    """numpy's dispatched SIMD targets above AVX2 (``X86_V4``, ``AVX512_ICL``, ... in numpy 2.3+; ``AVX512F``,
    ``AVX512_SKX``, ... before), the names ``NPY_DISABLE_CPU_FEATURES`` accepts without a warning on any
    CPU, with or without them. A baseline target cannot be disabled (numpy refuses to import), so none is
    named; () when numpy or its dispatch list cannot be read."""
    try:
        try:
            from numpy._core import _multiarray_umath as umath
        except ImportError:  # numpy 1.x
            from numpy.core import _multiarray_umath as umath  # type: ignore[no-redef]
        dispatch, baseline = list(umath.__cpu_dispatch__), set(umath.__cpu_baseline__)
    except Exception:  # noqa: BLE001 - no numpy pinning rather than no report
        return ()
    return tuple(name for name in dispatch
                 if name not in baseline and (name == "X86_V4" or name.startswith("AVX512")))


def pinned_environment(machine: str | None = None, flags: frozenset[str] | None = None,
                       numpy_features: tuple[str, ...] | None = None) -> dict[str, str]:
    """The variables that pin this machine's CPU kernels (``{}`` off x86-64: on ARM and others torch,
    oneDNN and numpy keep their own choice, and MKL is not used).

    On an x86-64 CPU with AVX2 and FMA (what torch requires for its AVX2 kernels): torch's kernels at
    ``avx2``, MKL's ``MKL_BRANCH``, oneDNN at most AVX2, numpy without its AVX-512 targets. On one without
    them torch would crash on ``avx2`` (it trusts the variable), so it gets ``default``, the kernels it
    would choose there anyway; the provenance then says the level differs from the pinned one.
    ``machine``, ``flags`` and ``numpy_features`` default to this machine's."""
    machine = (machine or platform.machine()).lower()
    if machine not in X86:
        return {}
    flags = cpu_flags() if flags is None else flags
    has_avx2 = flags is None or {"avx2", "fma"} <= flags  # flags unknown: trust x86-64's last decade
    numpy_features = numpy_features_above_avx2() if numpy_features is None else numpy_features
    environment = {"ATEN_CPU_CAPABILITY": PINNED_LEVEL.lower() if has_avx2 else "default",
                   "MKL_CBWR": MKL_BRANCH, "ONEDNN_MAX_CPU_ISA": PINNED_LEVEL, "DNNL_MAX_CPU_ISA": PINNED_LEVEL}
    if numpy_features:
        environment["NPY_DISABLE_CPU_FEATURES"] = " ".join(numpy_features)
    return environment


def pinning_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """False when ``ACSL_CPU_PINNING`` says off."""
    environ = os.environ if environ is None else environ
    return environ.get(SWITCH, "").strip().lower() not in OFF_VALUES


def kernel_pins(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The pins to put into a training process's environment: ``pinned_environment()``, or ``{}`` when
    ``environ`` (default ``os.environ``) turns pinning off."""
    return pinned_environment() if pinning_enabled(environ) else {}


def overridden(pins: Mapping[str, str], environ: Mapping[str, str] | None = None) -> list[str]:
    """``NAME=theirs (pinned: ours)`` for each variable ``environ`` sets to a value the pins replace."""
    environ = os.environ if environ is None else environ
    return [f"{name}={environ[name]} (pinned: {value})" for name, value in pins.items()
            if name in environ and environ[name] != value]


def process_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The whole environment of a training subprocess: ``environ`` (default ``os.environ``) with the pins
    over it."""
    environ = dict(os.environ if environ is None else environ)
    return {**environ, **kernel_pins(environ)}


def pinning_record(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The pinning variables as set in ``environ`` (default this process's), for the provenance; the
    switch is included when it is set."""
    environ = os.environ if environ is None else environ
    return {name: environ[name] for name in (*VARIABLES, SWITCH) if name in environ}


def capability_note(pinning: Mapping[str, str], capability: str) -> str:
    """A warning when torch's actual CPU capability is not the pinned level (a CPU without AVX2, pinning
    off, or a process started without the pins); "" when they agree or nothing is known."""
    pinned = pinning.get("ATEN_CPU_CAPABILITY")
    if not capability or capability == "unknown":
        return ""
    if not pinning_enabled(pinning):
        return (f"CPU kernels not pinned ({SWITCH}={pinning[SWITCH]}): torch ran its {capability} kernels; the "
                "numbers may differ from those of another machine")
    if pinned is None:
        if platform.machine().lower() not in X86:
            return (f"nothing pinned on {platform.machine()}: torch ran its {capability} kernels, each library "
                    "its own choice (docs/ARCHITECTURE.md, \"The same numbers on any machine\")")
        return (f"CPU kernels not pinned (the process was not started by acsl reproduce): torch ran its "
                f"{capability} kernels, not {PINNED_LEVEL}; the numbers may differ from those of another machine")
    if pinned.upper() != capability.upper() or pinned.upper() != PINNED_LEVEL:
        return (f"torch ran its {capability} kernels, not the pinned {PINNED_LEVEL} (this CPU lacks AVX2 or FMA, "
                f"or ATEN_CPU_CAPABILITY={pinned}): the numbers may differ from a reference made at {PINNED_LEVEL}")
    return ""


def pinning_summary(pinning: Mapping[str, str]) -> str:
    """One line for a provenance block: the level and the variables, e.g. ``pinned to AVX2
    (ATEN_CPU_CAPABILITY=avx2, MKL_CBWR=AVX2, ...)``."""
    if not pinning_enabled(pinning):
        return f"not pinned ({SWITCH}={pinning[SWITCH]})"
    values = ", ".join(f"{name}={pinning[name]}" for name in VARIABLES if name in pinning)
    if not values:
        return "not pinned"
    return f"pinned to {PINNED_LEVEL} ({values})"
