"""One module per subcommand: ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``.

Modules here import only argparse-level code at the top; everything heavy is imported inside ``run``.
"""
