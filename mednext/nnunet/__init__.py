"""Training every network of the paper inside nnU-Net v2 (§3.1): 1 mm / 128³ planning, trainers
generated from :mod:`mednext.networks`, UpKern starts and resumable runs."""
