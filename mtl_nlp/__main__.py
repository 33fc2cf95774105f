"""``python -m mtl_nlp`` runs the command-line interface."""

from .cli import main

raise SystemExit(main())
