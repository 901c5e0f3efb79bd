"""The ``convlens`` command line: a thin shell over the library.

Each sub-command lives in its own module with two functions: ``add_parser(subparsers)``
declares its options, and ``run(args)`` calls the library. Heavy imports (torch,
matplotlib) happen inside ``run`` so that ``convlens --help`` stays fast.
"""
