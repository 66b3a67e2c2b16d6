"""openkms.cli."""
