"""openkms.server."""
