"""One measured stage of a rehearsal: ``python -m mednext.rehearsal_probe STAGE -- COMMAND ARGS``.

Runs ``mednext-repro COMMAND ARGS`` with the per-case marks of ``STAGE`` installed
(:mod:`mednext.rehearsal.probe`) and marks the process's own peak memory when it ends. nnU-Net starts
its workers with ``spawn``, which imports this module in each worker as ``__mp_main__``: the call at the
bottom installs the same marks there.
"""

from __future__ import annotations

import os
import sys
import time

from mednext.rehearsal import markers
from mednext.rehearsal.probe import ENV_STAGE, STAGES, install


def main(argv: list[str] | None = None) -> int:
    """``STAGE -- mednext-repro arguments``: install the stage's marks, run the command, mark the process's peak."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 2 or args[0] not in STAGES or "--" not in args:
        print(f"usage: python -m mednext.rehearsal_probe {{{','.join(STAGES)}}} -- COMMAND ARGS", file=sys.stderr)
        return 2
    stage, command = args[0], args[args.index("--") + 1:]
    os.environ[ENV_STAGE] = stage  # spawned workers install the same marks (bottom of this module)
    install(stage)
    from mednext.cli import main as cli_main

    started = time.time()
    try:
        return cli_main(command)
    finally:
        markers.write_mark({"kind": "process", "stage": stage, "pid": os.getpid(), "wall_s": time.time() - started,
                            "peak_mb": markers.peak_rss_mb()})


if __name__ == "__main__":
    sys.exit(main())
elif os.environ.get(ENV_STAGE) and os.environ.get(markers.ENV_MARKERS):
    install(os.environ[ENV_STAGE])  # a worker nnU-Net spawned: the same marks as its parent
