"""Forward+backward time and peak memory of MedNeXt variants beside MONAI's MedNeXt on the same input.

Each measurement runs in a fresh process so that peak memory (CUDA: ``max_memory_allocated``;
CPU: the growth of the process's peak resident set, VmHWM) belongs to that model alone. Both
networks are built with deep supervision on (the paper's training setting) and the loss sums the
mean of every output. Ratios are this project's figure over MONAI's (below 1: ours is faster/smaller).
MONAI has no gradient checkpointing; ours uses it for M and L as the paper does unless
``--no-checkpointing`` is given, which is the like-for-like comparison.

Examples:
    python benchmarks/bench_mednext.py --patch 64 --variants S B --kernels 3
    python benchmarks/bench_mednext.py --device cuda --patch 128 --batch 2 --bf16 --channels-last
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import time
from dataclasses import asdict, dataclass

import torch


@dataclass
class Measurement:
    implementation: str
    variant: str
    kernel: int
    seconds: float
    peak_mb: float


def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _build(implementation: str, variant: str, kernel: int, checkpointing: bool) -> torch.nn.Module:
    if implementation == "mednext-repro":
        from mednext.network import create_mednext_v1

        return create_mednext_v1(1, 14, variant, kernel, deep_supervision=True,
                                 gradient_checkpointing=None if checkpointing else False)
    from monai.networks.nets.mednext import create_mednext

    return create_mednext(variant, spatial_dims=3, in_channels=1, out_channels=14, kernel_size=kernel,
                          deep_supervision=True)


def _measure(job: dict) -> dict:
    torch.set_num_threads(job["threads"])
    device = torch.device(job["device"])
    net = _build(job["implementation"], job["variant"], job["kernel"], job["checkpointing"]).to(device).train()
    x = torch.randn(job["batch"], 1, *([job["patch"]] * 3), device=device)
    if job["channels_last"]:
        net = net.to(memory_format=torch.channels_last_3d)
        x = x.contiguous(memory_format=torch.channels_last_3d)

    def step() -> None:
        net.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=job["bf16"]):
            outputs = net(x)
        loss = sum(o.float().mean() for o in outputs)
        loss.backward()
        if device.type == "cuda":
            torch.cuda.synchronize()

    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _rss_kb("VmRSS") * 1024
    step()  # warm-up (allocator, cuDNN autotuning)
    times = []
    for _ in range(job["repeats"]):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else _rss_kb("VmHWM") * 1024
    return asdict(Measurement(job["implementation"], job["variant"], job["kernel"],
                              statistics.median(times), (peak - base) / 2**20))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--patch", type=int, default=64, help="cubic patch edge (paper: 128)")
    parser.add_argument("--batch", type=int, default=1, help="batch size (paper: 2)")
    parser.add_argument("--variants", nargs="+", default=["S", "B", "M", "L"])
    parser.add_argument("--kernels", nargs="+", type=int, default=[3, 5])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast for both implementations")
    parser.add_argument("--channels-last", action="store_true", help="channels_last_3d memory format")
    parser.add_argument("--no-checkpointing", action="store_true", help="turn off our M/L gradient checkpointing")
    args = parser.parse_args()

    print(f"device={args.device} patch={args.patch}^3 batch={args.batch} bf16={args.bf16} "
          f"channels_last={args.channels_last} checkpointing={'off' if args.no_checkpointing else 'paper (M, L)'} "
          f"threads={args.threads} torch={torch.__version__}")
    print(f"{'variant':>7} {'k':>2} | {'ours s':>8} {'monai s':>8} {'ratio':>6} | {'ours MB':>9} {'monai MB':>9} {'ratio':>6}")
    context = mp.get_context("spawn")
    for kernel in args.kernels:
        for variant in args.variants:
            results = {}
            for implementation in ("mednext-repro", "monai"):
                job = dict(vars(args), implementation=implementation, variant=variant, kernel=kernel,
                           checkpointing=not args.no_checkpointing)
                with context.Pool(1) as pool:
                    results[implementation] = pool.apply(_measure, (job,))
            ours, theirs = results["mednext-repro"], results["monai"]
            print(f"{variant:>7} {kernel:>2} | {ours['seconds']:8.3f} {theirs['seconds']:8.3f} "
                  f"{ours['seconds'] / theirs['seconds']:6.2f} | {ours['peak_mb']:9.0f} {theirs['peak_mb']:9.0f} "
                  f"{ours['peak_mb'] / max(theirs['peak_mb'], 1e-9):6.2f}", flush=True)


if __name__ == "__main__":
    main()
