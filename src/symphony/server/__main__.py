"""``python -m symphony.server [OPTIONS]``: the same as ``symphony serve [OPTIONS]``."""

from symphony.clients._cli_serve import main

raise SystemExit(main())
