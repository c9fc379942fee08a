"""Training the reference models: recipes, one seeded and resumable loop, distillation losses, export.

``libkd_bench.models.training.recipe`` (no torch) holds the :class:`Recipe` registry; ``loop.train`` trains one recipe;
``run.train_and_export`` adds teachers and the export that ``libkd-bench score`` loads.
"""
