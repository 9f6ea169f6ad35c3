"""gsched.controller."""
