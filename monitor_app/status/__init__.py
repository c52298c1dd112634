"""What the status pages show."""
