"""gsched.protos."""
