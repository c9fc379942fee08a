"""Derived CIFAR-10 test sets: sources of the clean split, generators, and the on-disk set store."""
