"""The ESC/POS thermal receipt printer: a driver that owns its transport, and a TCP simulator."""
