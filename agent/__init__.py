"""gsched.agent."""
