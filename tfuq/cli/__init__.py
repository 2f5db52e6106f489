"""The ``tfuq`` command line: one module per subcommand, each a thin wrapper over the library.

Internal: what users rely on is the ``tfuq`` command and its ``--json`` output, not these
modules' names. Scripts (the benchmarks among them) use the library's public names instead.
"""
