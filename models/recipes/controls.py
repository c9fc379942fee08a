"""The control models of ``libkd-bench validate``: biases fixed by construction (see models/architectures/controls.py).

Each trains on the labels alone with plain cross-entropy; what it can see is decided by its architecture, not
by its training. Augmentation is a horizontal flip only: a zero-padded crop would put black borders into the
colour histogram and into the border colour that the shape control's figure/ground split is measured against.
Schedules (SGD-Nesterov, batch 256, cosine with one warmup epoch): colour 15 epochs, bagnet 15, shape 30. The
colour control sees raw [0, 1] pixels (its histogram bins the 8-bit values); the bagnet and shape controls get
the CIFAR-10 normalisation like the reference models (the shape control's figure/ground front end splits the
normalised image as it would split its [0, 1] pixels: still one bit per pixel).
"""

from __future__ import annotations

from dataclasses import replace

from libkd_bench.core.normalisation import Preset
from libkd_bench.models.training.recipe import Augment, Recipe, TrainConfig, register_recipe

CONTROL_SCHEDULE = TrainConfig(
    epochs=30, batch_size=256, lr=0.1, weight_decay=5e-4, warmup_epochs=1, augment=Augment.FLIP, label_smoothing=0.1
)

register_recipe(
    Recipe(
        name="control-colour",
        arch="control_colour",
        preset=Preset.NONE,  # the histogram bins the 8-bit values themselves, so no normalisation before it
        train=TrainConfig(
            epochs=15,
            batch_size=256,
            lr=0.1,
            weight_decay=5e-4,
            warmup_epochs=1,
            augment=Augment.FLIP,
            label_smoothing=0.1,
        ),
        description="control: joint RGB histogram -> MLP; no spatial information at all",
    )
)
register_recipe(
    Recipe(
        name="control-bagnet",
        arch="control_bagnet",
        train=replace(CONTROL_SCHEDULE, epochs=15),
        description="control: bag of 5x5-pixel local features (texture-biased by construction)",
    )
)
register_recipe(
    Recipe(
        name="control-shape",
        arch="control_shape",
        train=CONTROL_SCHEDULE,
        description="control: CNN on a one-bit figure/ground map (shape only by construction)",
    )
)
