"""``python -m trellis.cli``: the ``trellis`` command without its console script."""

from trellis.cli import main

main(prog_name="trellis")
