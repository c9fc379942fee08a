"""Low-level pieces every stage uses: errors, atomic writes, provenance, the torch runtime.

Modules here import nothing else from libkd_bench, so ``models`` and ``datasets_gen`` may use them."""
