"""Device adapters: one per device kind, each implementing a port from ``flows.ports``, each with
a simulator that speaks the same wire protocol."""
