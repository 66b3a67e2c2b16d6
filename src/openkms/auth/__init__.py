"""openkms.auth."""
