from bench.cli import entrypoint

entrypoint()
