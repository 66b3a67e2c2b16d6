"""`python -m openkms` runs the operator CLI."""

from openkms.cli.main import main

raise SystemExit(main())
