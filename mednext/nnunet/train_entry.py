"""``python -m mednext.nnunet.train_entry ARGS`` runs nnU-Net's own ``nnUNetv2_train`` entry point.

The same function the ``nnUNetv2_train`` console script calls (``run_training_entry``), started as a
module whose top level imports nothing: nnU-Net's final validation starts two ``spawn`` process
pools, and each spawned worker imports the parent's main module first. With the console script as
main, that is all of nnU-Net's training stack (~7 s of CPU per worker); with this module, a worker
imports only what the function it runs needs (~3.5 s). Measured on the 2-core CPU demo: about 9 s of
CPU less per training.
"""

from __future__ import annotations


def main() -> None:
    from nnunetv2.run.run_training import run_training_entry

    run_training_entry()


if __name__ == "__main__":
    main()
