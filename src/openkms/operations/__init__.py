"""openkms.operations."""
