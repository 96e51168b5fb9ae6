"""A4 printing through CUPS (pycups), and a private cupsd for tests and the simulated station."""
