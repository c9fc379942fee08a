"""From a checkpoint reference (a file, ``zoo:NAME``, a network in memory) to a wrapped model ready to score.

The stages, in the order a checkpoint passes through them:

- :mod:`.formats` reads the file in every format KD code writes (no pickled code runs);
- :mod:`.contents` finds the weights inside what the file held (a distiller's student, an EMA copy) and the
  training metadata beside them;
- :mod:`.checkpoints` opens a reference (path or zoo entry): its identity, weights and what it says of itself;
- :mod:`.sidecar` reads a checkpoint's spec written next to it; :mod:`.cli_args` the flags that override it;
- :mod:`.detect` names the registered architecture from keys and shapes alone;
- :mod:`.class_map` maps a network trained on other classes onto CIFAR-10's;
- :mod:`.wrapped` is the model every scorer calls ([0, 1] images in, logits out);
- :mod:`.load` (``load_model``) ties them together; :mod:`.in_memory` does the same for an ``nn.Module``;
- :mod:`.inspection` reports all of it for ``libkd-bench inspect``.

This package's ``__init__`` imports nothing, so the command line's flags (:mod:`.cli_args`) stay free of torch.
"""
