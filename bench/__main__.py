from libkd_bench.cli import entrypoint

entrypoint()
