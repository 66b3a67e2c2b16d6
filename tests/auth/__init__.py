"""S-1, S-2 and C-5 (a): SigV4 verification and constant-time comparison."""
