"""Operation handlers driven in-process: C-4 and C-5 (b) timing."""
