"""The fleet: the agent on every terminal, and the console and CLI at the centre (MQTT v5)."""
