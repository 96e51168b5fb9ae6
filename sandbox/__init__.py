"""Private services for tests, ``make run``, ``bench/`` and ``faults/``: a mosquitto with the
fleet's ACL (plain or the shipped TLS configuration), a cupsd with a simulated network printer,
pcscd with the virtual reader, a PostgreSQL cluster, a coturn TURN relay on the shipped
configuration. Each runs on free loopback ports in a folder of its own and is stopped with its
owner. Production code does not import them (an import-linter contract names the exceptions: the
simulated devices of ``[devices] ... = "sim"`` and ``make run``)."""
