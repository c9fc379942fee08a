"""The model card every ``zoo:NAME`` entry carries: what it is, who made it, how to cite it.

A zoo model scored without ``--card`` gets this card in its run record, and a leaderboard built from records
that predate cards shows it for records whose checkpoint came from the zoo. Cards are plain field dictionaries
here; libkd_bench.records.model_card validates them (tests/test_model_card.py checks every entry).

Akamaster's ResNets name their author, licence, repository and paper. The bundled models are described by
the recipe that trained them (``libkd-bench train NAME``): teacher, method, seed, data and preprocessing.
"""

from __future__ import annotations

from typing import Any

from libkd_bench.core.errors import BenchError, unknown_name_message

AKAMASTER_LINK = "https://github.com/akamaster/pytorch_resnet_cifar10"
AKAMASTER_CITATION = (
    "Yerlan Idelbayev, Proper ResNet Implementation for CIFAR10/CIFAR100 in PyTorch (2018); "
    "He, Zhang, Ren & Sun, Deep Residual Learning for Image Recognition, CVPR 2016"
)
CIFAR10_TRAIN = "CIFAR-10 train split (50,000 images)"
SHARED_JPEG_TRAIN = "CIFAR-10 train split (50,000 images), the shared JPEG copy"
BUNDLED_LICENCE = "BSD-3-Clause (the libkd-bench package)"
BUNDLED_AUTHORS = "libkd-bench reference recipes"
# What the recipes' methods are, and whom to cite for them.
METHOD_CITATIONS = {
    "kd": "Hinton, Vinyals & Dean, Distilling the Knowledge in a Neural Network (2015)",
    "kd-layer": "Hinton, Vinyals & Dean, Distilling the Knowledge in a Neural Network (2015)",
    "deit-hard": "Touvron et al., Training data-efficient image transformers & distillation through attention, "
    "ICML 2021",
    "libkd": "Touvron et al., Training data-efficient image transformers & distillation through attention, "
    "ICML 2021 (distillation token)",
}


def zoo_card(name: str) -> dict[str, Any]:
    """The card fields of zoo entry ``name``.

    Raises:
        BenchError: ``name`` is not a zoo entry.
    """
    from libkd_bench.models.zoo import ZOO

    entry = ZOO.get(name)
    if entry is None:
        raise BenchError(unknown_name_message("zoo checkpoint", name, ZOO))
    preset = entry.spec.preset.value if entry.spec.preset is not None else "none"
    preprocessing = f"32x32 RGB in [0, 1], normalised with the {preset} mean and std"
    if entry.bundled is None:
        return {
            "method": "supervised on labels (no teacher)",
            "training_data": CIFAR10_TRAIN,
            "preprocessing": preprocessing,
            "licence": "BSD-2-Clause",
            "link": AKAMASTER_LINK,
            "citation": AKAMASTER_CITATION,
            "authors": "Yerlan Idelbayev",
            "notes": entry.description,
        }
    return _bundled_card(name, preprocessing, entry.description)


def _bundled_card(name: str, preprocessing: str, description: str) -> dict[str, Any]:
    from libkd_bench.models.training.recipe import Method, get_recipe

    recipe = get_recipe(name)
    teachers = " + ".join(teacher.split(":", 1)[1] for teacher in recipe.teachers)
    options = ", ".join(f"{key}={value:g}" for key, value in recipe.method_options.items())
    method = recipe.method.value + (f" ({options})" if options else "")
    card: dict[str, Any] = {
        "teacher": teachers or None,
        "method": "supervised on labels (no teacher)" if recipe.method is Method.NONE else method,
        "seed": recipe.train.seed,
        "training_data": SHARED_JPEG_TRAIN,
        "preprocessing": preprocessing,
        "licence": BUNDLED_LICENCE,
        "citation": METHOD_CITATIONS.get(recipe.method.value),
        "authors": BUNDLED_AUTHORS,
        "notes": f"{description}; recipe {recipe.name}" + (f", baseline {recipe.baseline}" if recipe.baseline else ""),
    }
    return {key: value for key, value in card.items() if value is not None}
