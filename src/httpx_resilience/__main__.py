"""``python -m httpx_resilience`` runs the command-line tool."""

from .cli import main

raise SystemExit(main())
