"""Wall time of the data commands (``acsl data download`` and ``acsl data check``) on fake archives
served from 127.0.0.1 (this machine has no internet; issue 4 asks for these timings).

The archives carry the real names (``lvis_v0.5_{train,val}.json.zip``, ``train2017.zip``,
``val2017.zip``) and the real layout; their content is the ``quick`` synthetic benchmark in LVIS v0.5
form (1000 + 250 images). The COCO archives' published sizes and md5 sums cannot match fake files, so
this process alone drops them from the registry (the archives then go through trust-on-first-use, as
LVIS v0.5's do). Every step runs through the command line's ``main``:

    python benchmarks/bench_data_commands.py [--profile quick]
"""

from __future__ import annotations

import argparse
import functools
import shutil
import tempfile
import threading
import time
import zipfile
from dataclasses import replace
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from acsl import cli
from acsl.data import download
from acsl.runs import profile_benchmark


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (http.server API)
        pass


def _zip_dir(archive: Path, entries: dict[str, Path]) -> None:
    """``entries``: name inside the archive → file, or directory whose files go under that name."""
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, source in entries.items():
            if source.is_dir():
                zf.writestr(name.rstrip("/") + "/", b"")
                for file in sorted(source.iterdir()):
                    zf.write(file, f"{name.rstrip('/')}/{file.name}")
            else:
                zf.write(source, name)


def build_fake_mirror(profile: str, work: Path) -> Path:
    bench = profile_benchmark(profile, work / "generated", progress=False)
    mirror = work / "mirror"
    mirror.mkdir()
    _zip_dir(mirror / "lvis_v0.5_train.json.zip", {"lvis_v0.5_train.json": bench.train_json})
    _zip_dir(mirror / "lvis_v0.5_val.json.zip", {"lvis_v0.5_val.json": bench.val_json})
    _zip_dir(mirror / "train2017.zip", {"train2017": bench.train_images})
    _zip_dir(mirror / "val2017.zip", {"val2017": bench.val_images})
    return mirror


def _timed(label: str, argv: list[str]) -> float:
    started = time.perf_counter()
    code = cli.main(argv)
    seconds = time.perf_counter() - started
    print(f"{label:48s} {seconds:7.2f} s   exit {code}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick", choices=("smoke", "quick"))
    args = parser.parse_args()
    coco = download.DATASETS["coco2017"]
    download.DATASETS["coco2017"] = replace(
        coco, archives=tuple(replace(a, size_bytes=None, md5=None) for a in coco.archives))

    work = Path(tempfile.mkdtemp(prefix="acsl-bench-data-"))
    try:
        mirror = build_fake_mirror(args.profile, work)
        sizes = {p.name: p.stat().st_size for p in sorted(mirror.iterdir())}
        print("fake archives: " + ", ".join(f"{name} {size / 1e6:.1f} MB" for name, size in sizes.items()))
        server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(mirror)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base_url = f"http://127.0.0.1:{server.server_address[1]}/"
        root = str(work / "data")
        try:
            _timed("acsl data download lvis-v0.5 (fresh)", ["data", "download", "lvis-v0.5", "--root", root, "--base-url", base_url])
            _timed("acsl data download coco2017 (fresh)", ["data", "download", "coco2017", "--root", root, "--base-url", base_url])
            _timed("acsl data download lvis-v0.5 (re-run, all present)", ["data", "download", "lvis-v0.5", "--root", root, "--base-url", base_url])
            _timed("acsl data download coco2017 (re-run, all present)", ["data", "download", "coco2017", "--root", root, "--base-url", base_url])
            _timed("acsl data check lvis-v0.5 --split val", ["data", "check", "lvis-v0.5", "--root", root, "--split", "val"])
            _timed("acsl data check lvis-v0.5 --split train --all-images", ["data", "check", "lvis-v0.5", "--root", root, "--split", "train", "--all-images"])
        finally:
            server.shutdown()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
