"""The 15 common corruptions of CIFAR-10-C (Hendrycks & Dietterich, ICLR 2019) at CIFAR scale.

``table`` holds the published CIFAR-10 parameter table (no imports beyond the standard library, so reports can
name the family's sets cheaply); ``noise``, ``blur``, ``weather`` and ``digital`` hold the transforms, each
``fn(images, parameters, rngs) -> images`` on uint8 (n, 32, 32, 3) batches, vectorised over the batch with one
seeded generator per image. ``libkd_bench.datasets_gen.generators.corruptions`` registers them as sets.
"""
