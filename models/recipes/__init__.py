"""Built-in training recipes; importing this package registers every one of them.

To add a recipe, add a ``register_recipe(Recipe(...))`` entry to one of these modules (or a new module
imported below); ``tests/test_training.py`` trains every registered recipe for a few steps.
"""

from libkd_bench.models.recipes import controls, reference, study  # noqa: F401  (imported to register)
