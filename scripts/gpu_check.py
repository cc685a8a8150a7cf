"""One bounded check on a GPU machine (issue 5), run by ``scripts/gpu_check.sh``.

1. the ``quick`` profile's detector trained on its synthetic benchmark for a fixed number of
   iterations, with AMP and without: images/s and peak GPU memory;
2. the paper's detector (Faster R-CNN R50-FPN, 1230 classes, ACSL, 800/1333 px, 2 images per GPU,
   random weights and images) for a few iterations with AMP: images/s and peak memory at paper scale;
3. the loss benchmark (``benchmarks/bench_losses.py``) on the GPU;
4. CPU against GPU on one batch: every loss of the same detector, weights and sampled RoIs in fp32.

    python scripts/gpu_check.py [--iterations 60] [--device cuda]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from acsl.data import LVISDetection, collate_detection, generate_benchmark  # noqa: E402
from acsl.data.stats import load_category_stats  # noqa: E402
from acsl.data.subset import FirstImages  # noqa: E402
from acsl.engine import train  # noqa: E402
from acsl.losses import build_loss  # noqa: E402
from acsl.models import DetectorConfig, build_detector  # noqa: E402
from acsl.models.sampling import SAMPLING_KEY, mix_seed  # noqa: E402
from acsl.profiles import get_profile  # noqa: E402


def _quick_model(train_set: LVISDetection, loss_name: str = "softmax_ce"):
    torch.manual_seed(0)
    loss = build_loss(loss_name, train_set.num_classes, train_set.frequencies, **({"xi": 0.7} if loss_name == "acsl" else {}))
    return build_detector(get_profile("quick").detector, train_set.num_classes, loss)


def _timed_training(train_set, iterations: int, device: torch.device, amp: bool, out: Path) -> tuple[float, float]:
    """images/s after the first 5 iterations (CUDA warm-up), and peak memory in GiB."""
    config = replace(get_profile("quick").stage1, epochs=1, log_every=10_000)
    subset = FirstImages(train_set, iterations * config.batch_size)
    stamps: list[float] = []

    def on_step(_: int) -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        stamps.append(time.perf_counter())

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    train(_quick_model(train_set), subset, config, out, device=device, amp=amp, progress=False, resume=False,
          on_step=on_step)
    images = (len(stamps) - 5) * config.batch_size
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    return images / (stamps[-1] - stamps[4]), peak


def paper_scale(device: torch.device, iterations: int) -> None:
    """R50-FPN at 800/1333, 1230 classes with ACSL, 2 random images per step."""
    frequencies = list(load_category_stats("lvis_v0.5")["frequency"])
    torch.manual_seed(0)
    loss = build_loss("acsl", len(frequencies), frequencies, xi=0.7)
    model = build_detector(DetectorConfig(backbone="resnet50"), len(frequencies), loss).to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    images = [torch.rand(3, 800, 1216, generator=g).to(device) for _ in range(2)]
    targets = [{"boxes": torch.tensor([[100.0, 120.0, 400.0, 500.0], [600.0, 200.0, 900.0, 700.0]], device=device),
                "labels": torch.tensor([5, 900], device=device)} for _ in range(2)]
    torch.cuda.reset_peak_memory_stats(device)
    stamps = []
    for _ in range(iterations):
        with torch.autocast("cuda", dtype=torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16):
            losses = model(images, targets)
        optimizer.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        optimizer.step()
        torch.cuda.synchronize(device)
        stamps.append(time.perf_counter())
    rate = 2 * (len(stamps) - 3) / (stamps[-1] - stamps[2])
    print(f"paper scale (R50-FPN, 800x1216, 1230 classes, ACSL, AMP, 2 img/step): {rate:.1f} images/s, "
          f"peak {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB "
          f"(8 GPUs at this rate: one 12-epoch LVIS v0.5 schedule of 57k images ≈ "
          f"{12 * 57_000 / (8 * rate) / 3600:.1f} h)")


def cpu_gpu_parity(train_set: LVISDetection, device: torch.device) -> None:
    """The same detector, weights, batch and sampled RoIs on the CPU and the GPU, fp32."""
    images, targets = collate_detection([train_set[i] for i in range(8)])
    for index, target in enumerate(targets):
        target[SAMPLING_KEY] = torch.tensor(mix_seed(0, 0, index))
    for loss_name in ("softmax_ce", "acsl"):
        results = {}
        for where in (torch.device("cpu"), device):
            model = _quick_model(train_set, loss_name).to(where).train()
            with torch.no_grad():
                losses = model([im.to(where) for im in images], [{k: v.to(where) for k, v in t.items()} for t in targets])
            results[where.type] = {k: v.item() for k, v in losses.items()}
        worst = max(abs(results["cpu"][k] - results[device.type][k]) for k in results["cpu"])
        shown = ", ".join(f"{k} {results['cpu'][k]:.5f}/{results[device.type][k]:.5f}" for k in results["cpu"])
        print(f"CPU vs {device.type} on one batch, {loss_name}: largest |Δ| {worst:.2e}  ({shown})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=60, help="training iterations per run of the quick profile")
    parser.add_argument("--paper-iterations", type=int, default=15)
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu_check: CUDA is not available on this machine")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"torch {torch.__version__}, device {name}, bf16 {device.type == 'cuda' and torch.cuda.is_bf16_supported()}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        bench = generate_benchmark(Path(tmp) / "quick", get_profile("quick").data, progress=False)
        train_set = LVISDetection(bench.train_json, bench.train_images, train=True, hflip_prob=0.5)
        print(f"quick benchmark generated in {time.perf_counter() - started:.1f} s")
        for amp in (True, False):
            rate, peak = _timed_training(train_set, args.iterations, device, amp, Path(tmp) / f"run-amp{amp}")
            print(f"quick profile, {args.iterations} iterations of 8 images, AMP {'on ' if amp else 'off'}: "
                  f"{rate:.1f} images/s, peak {peak:.3f} GiB")
        cpu_gpu_parity(train_set, device)
    if device.type == "cuda":
        paper_scale(device, args.paper_iterations)
    sys.argv = [sys.argv[0], "--device", str(device), "--repeats", "20"]
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench_losses

    bench_losses.main()
    print(f"gpu_check finished in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
