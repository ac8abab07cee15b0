"""Backend tests: real upstream processes on loopback."""
