"""J-1 (in process) and S-4 (in process): strict JSON, the KMS model and model-driven validation."""
