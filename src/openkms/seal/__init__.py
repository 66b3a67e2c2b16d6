"""openkms.seal."""
