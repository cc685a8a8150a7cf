"""The verdict on one of the paper's claims, from paired differences over seeds.

A claim compares two of our runs trained at the same seeds ("ACSL's APr is above the baseline's"): the
per-seed difference d_s = ours − comparison carries it. With n ≥ 2 seeds the 95 % interval of the mean
is the Student t interval d̄ ± t(0.975, n − 1) · s / √n (s the sample standard deviation of the d_s);
the claim holds when the whole interval lies on the claimed side of its boundary, does not hold when the
whole interval lies on the other side, and cannot be judged when the interval crosses the boundary.

The t quantile is scipy's (``scipy.stats.t.ppf``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scipy.stats import t as student_t

CLAIMS = ("greater", "less", "within")
HOLDS = "holds"
DOES_NOT_HOLD = "does not hold"
SMOKE = "pipeline check only (smoke)"
ONE_SEED = "cannot be judged (one seed, no interval)"


@dataclass(frozen=True)
class Verdict:
    """A claim's verdict with the numbers behind it. ``mean`` is NaN when a difference is undefined;
    ``low`` and ``high`` bound the 95 % t interval of the mean, None with fewer than two defined seeds."""

    verdict: str
    mean: float
    low: float | None
    high: float | None
    seeds: int

    def __str__(self) -> str:
        return self.verdict


def t_quantile_975(dof: int) -> float:
    """t(0.975, ν): the half-width factor of a two-sided 95 % t interval with ``dof`` = ν ≥ 1 (``scipy.stats.t``)."""
    if isinstance(dof, bool) or not isinstance(dof, int) or dof < 1:
        raise ValueError(f"dof: expected an integer >= 1, got {dof!r}")
    return float(student_t.ppf(0.975, dof))


def _labelled(differences: float | Sequence[float] | Mapping[object, float]) -> list[tuple[str, float]]:
    """(label, value) per seed; a value that is None becomes NaN. Labels name seeds for a mapping,
    positions for a sequence."""
    if isinstance(differences, Mapping):
        pairs = [(f"seed {seed}", value) for seed, value in differences.items()]
    elif differences is None or (isinstance(differences, (int, float)) and not isinstance(differences, bool)):
        pairs = [("the difference", differences)]
    elif isinstance(differences, Sequence) and not isinstance(differences, str):
        pairs = [(f"difference {i + 1} of {len(differences)}", value) for i, value in enumerate(differences)]
    else:
        raise ValueError(f"differences: expected a number, a list of per-seed numbers or a mapping seed → number, "
                         f"got {differences!r}")
    if not pairs:
        raise ValueError("differences: expected at least one per-seed difference, got none")
    checked = []
    for label, value in pairs:
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ValueError(f"differences: {label} must be a number or None, got {value!r}")
        checked.append((label, math.nan if value is None else float(value)))
    return checked


def _check_claim(claim: str, tolerance: float | None, profile: str) -> None:
    if claim not in CLAIMS:
        raise ValueError(f"claim: expected one of {', '.join(CLAIMS)}, got {claim!r}")
    if claim == "within" and (tolerance is None or isinstance(tolerance, bool)
                              or not isinstance(tolerance, (int, float)) or not 0 < tolerance < math.inf):
        raise ValueError(f"tolerance: the claim 'within' needs a finite tolerance > 0, got {tolerance!r}")
    if claim != "within" and tolerance is not None:
        raise ValueError(f"tolerance: only the claim 'within' takes a tolerance, got {tolerance!r} with {claim!r}")
    if not isinstance(profile, str) or not profile:
        raise ValueError(f"profile: expected a profile name such as 'quick', got {profile!r}")


def _side(low: float, high: float, claim: str, tolerance: float | None) -> str:
    """The verdict of an interval [low, high] against the claim's boundary."""
    interval = f"[{low:.3g}, {high:.3g}]"
    if claim == "within":
        if -tolerance <= low and high <= tolerance:
            return HOLDS
        if high < -tolerance or low > tolerance:
            return DOES_NOT_HOLD
        crossed = [sign for sign, bound in (("−", -tolerance), ("+", tolerance)) if low <= bound <= high]
        boundary = "±" if len(crossed) != 1 else crossed[0]
        return f"cannot be judged (the interval {interval} crosses {boundary}{tolerance:g})"
    above, below = (low > 0, high < 0) if claim == "greater" else (high < 0, low > 0)
    if above:
        return HOLDS
    if below:
        return DOES_NOT_HOLD
    return f"cannot be judged (the interval {interval} crosses 0)"


def paired_verdict(differences: float | Sequence[float] | Mapping[object, float], claim: str, profile: str,
                   tolerance: float | None = None) -> Verdict:
    """The verdict on a paper claim from the per-seed paired differences ours − comparison.

    ``differences``: one number, a list of per-seed numbers, or a mapping seed → number (NaN or None
    where the metric is undefined, e.g. APr with no rare class in the validation set). ``claim``:
    ``"greater"`` (the paper says ours is above the comparison: the difference is > 0), ``"less"``
    (< 0) or ``"within"`` (|difference| ≤ ``tolerance``). ``profile``: the profile the runs used.

    The rules, in order: a profile whose name contains ``smoke`` gives "pipeline check only (smoke)";
    an undefined difference "cannot be judged (undefined in this profile: …)"; a single seed "cannot be
    judged (one seed, no interval)"; else the 95 % t interval of the mean decides: "holds" when it lies
    entirely on the claimed side of the boundary (0, or ±tolerance), "does not hold" when it lies
    entirely on the other side, "cannot be judged (the interval [a, b] crosses 0)" otherwise.
    """
    _check_claim(claim, tolerance, profile)
    pairs = _labelled(differences)
    values = [value for _, value in pairs]
    n = len(values)
    undefined = [label for label, value in pairs if not math.isfinite(value)]
    mean = math.nan if undefined else math.fsum(values) / n
    low = high = None
    if not undefined and n >= 2:
        spread = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
        half = t_quantile_975(n - 1) * spread / math.sqrt(n)
        low, high = mean - half, mean + half
    if "smoke" in profile:
        verdict = SMOKE
    elif undefined:
        verdict = f"cannot be judged (undefined in this profile: no finite value for {', '.join(undefined)})"
    elif n == 1:
        verdict = ONE_SEED
    else:
        verdict = _side(low, high, claim, tolerance)
    return Verdict(verdict, mean, low, high, n)
