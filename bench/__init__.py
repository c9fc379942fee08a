"""libkd-bench: which inductive biases did a distilled CIFAR-10 student inherit from its teacher?

Importing this package is cheap on purpose: the command line must answer ``--help`` without torch.
"""

__version__ = "0.1.0"
