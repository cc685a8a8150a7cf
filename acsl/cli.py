"""Command line: ``acsl data | train | eval | reproduce`` (also ``python -m acsl``)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

from .profiles import DEFAULT_PROFILE, PROFILES


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="acsl", description="Adaptive Class Suppression Loss: reproduce the paper.")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="generate the synthetic long-tail benchmark of a profile")
    data.add_argument("--profile", default=DEFAULT_PROFILE, choices=sorted(PROFILES))
    data.add_argument("--root", default="data")
    data.add_argument("--seed", type=int, default=0)

    for name, help_text in (("train", "train one experiment (stage 1 or 2)"), ("eval", "train if needed, then evaluate one experiment")):
        cmd = sub.add_parser(name, help=help_text)
        cmd.add_argument("--profile", default=DEFAULT_PROFILE, choices=sorted(PROFILES))
        cmd.add_argument("--loss", default="softmax_ce")
        cmd.add_argument("--stage", type=int, default=1, choices=(1, 2))
        cmd.add_argument("--schedule", type=int, default=1, help="multiple of the profile's 1x stage-1 schedule")
        cmd.add_argument("--xi", type=float, default=None, help="ACSL's ξ")
        cmd.add_argument("--statistic-free", action="store_true", help="ACSL without the frequency schedule")
        cmd.add_argument("--seed", type=int, default=0)
        cmd.add_argument("--device", default="auto")
        cmd.add_argument("--run-store", default="runs")
        cmd.add_argument("--data-root", default="data")

    rep = sub.add_parser("reproduce", help="execute the notebooks with papermill into reports/")
    rep.add_argument("--profile", default=DEFAULT_PROFILE, choices=sorted(PROFILES))
    rep.add_argument("--only", nargs="+", default=None, metavar="NAME", help="notebook names (default: all)")
    rep.add_argument("--reports", default="reports")
    rep.add_argument("--run-store", default="runs")
    rep.add_argument("--data-root", default="data")
    rep.add_argument("--device", default="auto")
    return parser


def _spec(args: argparse.Namespace):
    from .experiments import ExperimentSpec

    options: dict = {}
    if args.xi is not None:
        options["xi"] = args.xi
    if args.statistic_free:
        options["statistic_free"] = True
    return ExperimentSpec(profile=args.profile, loss=args.loss, loss_options=tuple(options.items()),
                          stage=args.stage, schedule=args.schedule, seed=args.seed)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "data":
            from dataclasses import replace

            from .data.synthetic import generate_benchmark
            from .profiles import get_profile

            config = replace(get_profile(args.profile).data, seed=args.seed)
            bench = generate_benchmark(f"{args.root}/synthetic-{args.profile}-seed{args.seed}", config)
            print(bench.root)
        elif args.command in ("train", "eval"):
            from .experiments import RunStore

            spec = _spec(args)
            store = RunStore(args.run_store, data_root=args.data_root, device=args.device)
            if args.command == "train":
                print(store.checkpoint(spec))
            else:
                print(json.dumps(store.metrics(spec)["metrics"], indent=2))
        elif args.command == "reproduce":
            from .report import reproduce

            started = time.perf_counter()
            results = reproduce(args.profile, args.only, args.reports, args.run_store, args.data_root, args.device)
            for result in results:
                print(f"{result.name:32s} {result.wall_s:8.1f} s   {result.title}")
            print(f"total {time.perf_counter() - started:.1f} s; open {args.reports}/index.html")
    except (ValueError, FileNotFoundError, PermissionError, RuntimeError) as error:
        print(f"acsl {args.command}: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
