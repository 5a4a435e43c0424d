"""``python -m dlgrade``: the ``dlgrade`` command."""
from dlgrade.graders.cli import main

main()
