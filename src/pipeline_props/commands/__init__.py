"""The CLI's sub-commands, one module per command group, and what they share (common.py).

cli.py builds the typer app and registers each group; these modules are the
CLI layer too (they print), so no lower module imports them.
"""
