"""``python -m pyscvibridge.cli``."""

from . import main

main()
