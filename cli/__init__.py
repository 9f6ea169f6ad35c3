"""gsched.cli."""
