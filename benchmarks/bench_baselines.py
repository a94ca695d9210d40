"""Forward+backward time and peak memory of the six baselines at their paper patch (or a given one).

Each network runs in a fresh process, so its peak memory (CPU: growth of the peak resident set,
VmHWM, over the process before building; CUDA: ``max_memory_allocated``) is its own. Prints one
tidy CSV row per network: name, patch, parameters, build seconds, forward+backward seconds, peak MB.

Examples:
    python benchmarks/bench_baselines.py                      # all six, paper patches, batch 1, CPU
    python benchmarks/bench_baselines.py --names nnFormer TransUNet --small
    python benchmarks/bench_baselines.py --device cuda --batch 2
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing as mp
import sys
import time
from dataclasses import asdict, dataclass

import torch


@dataclass
class Row:
    name: str
    patch: str
    batch: int
    params: int
    build_s: float
    fwd_bwd_s: float
    peak_mb: float


def _vm_hwm_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM"):
                return int(line.split()[1])
    raise RuntimeError("VmHWM not in /proc/self/status")


def _measure(name: str, small: bool, batch: int, device: str, threads: int, queue: mp.Queue) -> None:
    import baselines

    torch.set_num_threads(threads)
    spec = baselines.get(name)
    patch = spec.smallest_patch_size if small else spec.paper_patch_size
    in_ch, n_cls = spec.reference.in_channels, spec.reference.n_classes
    base_kb = _vm_hwm_kb()
    t0 = time.perf_counter()
    net = baselines.build(name, in_ch, n_cls, patch).to(device)
    build_s = time.perf_counter() - t0
    x = torch.randn(batch, in_ch, *patch, device=device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    y = net(x)
    y.float().mean().backward()
    if device == "cuda":
        torch.cuda.synchronize()
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mb = (_vm_hwm_kb() - base_kb) / 1024
    fwd_bwd_s = time.perf_counter() - t0
    expected = (batch, n_cls, *patch)
    if tuple(y.shape) != expected:
        raise RuntimeError(f"{name}: output shape {tuple(y.shape)}, expected {expected} (benchmarks/bench_baselines.py)")
    queue.put(Row(name, "x".join(map(str, patch)), batch, baselines.count_parameters(net),
                  round(build_s, 2), round(fwd_bwd_s, 2), round(peak_mb, 1)))


def main(argv: list[str] | None = None) -> int:
    import baselines

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--names", nargs="+", default=baselines.names(), choices=baselines.names())
    parser.add_argument("--small", action="store_true", help="use each network's smallest legal patch")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args(argv)

    ctx = mp.get_context("spawn")
    writer = csv.DictWriter(sys.stdout, fieldnames=list(Row.__dataclass_fields__))
    writer.writeheader()
    for name in args.names:
        queue: mp.Queue = ctx.Queue()
        proc = ctx.Process(target=_measure, args=(name, args.small, args.batch, args.device, args.threads, queue))
        proc.start()
        proc.join()
        if proc.exitcode != 0:
            print(f"{name}: measurement process failed with exit code {proc.exitcode}", file=sys.stderr)
            continue
        writer.writerow(asdict(queue.get()))
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
