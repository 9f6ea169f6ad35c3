"""gsched.common."""
