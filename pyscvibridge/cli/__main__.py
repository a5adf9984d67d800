"""``python -m pyscvibridge.cli``."""

from . import main

raise SystemExit(main())
