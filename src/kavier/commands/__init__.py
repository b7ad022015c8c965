"""CLI commands that live in modules of their own; ``kavier.cli`` registers each with one line.

A command module imports only typer (and the standard library) at module level, so that
``kavier --help`` and ``kavier run`` do not pay for its dependencies; heavy imports go inside
the command function.
"""
