"""Folder named by ``nnUNet_extTrainer``: nnU-Net's trainer finder scans the modules here."""
