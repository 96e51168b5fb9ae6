"""Running simulated terminals: in a child process of their own (:class:`SimulatorProcess`, as
the console's load tests and ``bench console`` do, so the simulator's CPU is not the measured
console's), for a while from the command line (:func:`run`, ``fleet simulate``)."""

from __future__ import annotations

import logging
import multiprocessing
import time
from typing import Any

from fleet.simulate import SimConfig, Simulator, raise_nofile, rss_mib

log = logging.getLogger("fleet.simulate")


def _serve(config: SimConfig, conn: Any) -> None:
    """The child of :class:`SimulatorProcess`: a simulator answering commands on a pipe."""
    raise_nofile(config.kiosks * 2 + 256)
    sim = Simulator(config)
    sim.start()
    try:
        while True:
            command, arg = conn.recv()
            if command == "stop":
                break
            if command == "wait_connected":
                conn.send(sim.wait_connected(float(arg)))
            elif command == "burst":
                per_terminal, timeout_s = arg
                acked = sim.stats.acked
                sent = sim.burst(per_terminal, "events").result(timeout_s)
                deadline = time.monotonic() + timeout_s
                while sim.stats.acked < acked + sent and time.monotonic() < deadline:
                    time.sleep(0.01)
                conn.send((sent, sim.stats.acked - acked))
            elif command == "stats":
                conn.send((dict(vars(sim.stats)), rss_mib()))
    finally:
        sim.stop()
        conn.send("stopped")


class SimulatorProcess:
    """A :class:`Simulator` in a child process, for a parent that must stay small.

    A process holding thousands of sockets cannot run paho's own network loop: it waits with
    ``select()``, which fails on descriptors above 1023. The benchmark keeps the terminals here
    and the console-side clients (ingest, rollout driver) in its own process.
    """

    def __init__(self, config: SimConfig) -> None:

        self.config = config
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(config, child), daemon=True)
        self.station_keys = [
            f"{config.prefix}-site-{i % max(config.sites, 1):02d}/{config.prefix}-{i:05d}"
            for i in range(config.kiosks)
        ]

    def _ask(self, command: str, arg: Any, timeout_s: float) -> Any:
        self._conn.send((command, arg))
        if not self._conn.poll(timeout_s + 30):
            raise TimeoutError(f"the simulator process did not answer {command!r}")
        return self._conn.recv()

    def start(self) -> None:
        self._proc.start()

    def wait_connected(self, timeout_s: float) -> bool:
        return bool(self._ask("wait_connected", timeout_s, timeout_s))

    def burst(self, per_terminal: int, timeout_s: float) -> tuple[int, int]:
        """Every terminal publishes ``per_terminal`` events: (sent, acknowledged)."""
        sent, acked = self._ask("burst", (per_terminal, timeout_s), timeout_s)
        return int(sent), int(acked)

    def stats(self) -> tuple[dict[str, int], float]:
        """The simulator's counters and its process's RSS in MiB."""
        counters, rss = self._ask("stats", None, 10)
        return dict(counters), float(rss)

    def kill(self) -> None:
        """Every terminal's connection drops at once, without a word (a site's power cut): the
        broker publishes their Wills."""
        self._proc.kill()
        self._proc.join()

    def stop(self, timeout_s: float = 30.0) -> None:
        if self._proc.is_alive():
            try:
                self._ask("stop", None, timeout_s)
            except (TimeoutError, EOFError, OSError):
                log.warning("the simulator process did not stop cleanly")
        self._proc.join(timeout_s)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()


def run(config: SimConfig, *, duration_s: float | None = None) -> int:
    """``fleet simulate``: run until interrupted (or ``duration_s``), printing a line of stats."""
    sim = Simulator(config)
    t0 = time.monotonic()
    sim.start()
    try:
        connected = sim.wait_connected(max(30.0, config.kiosks / 200))
        print(
            f"{sim.stats.connected} of {config.kiosks} terminals connected in "
            f"{time.monotonic() - t0:.1f} s; RSS {rss_mib():.0f} MiB"
            + ("" if connected else " (not all: see the broker's log)"),
            flush=True,
        )
        end = None if duration_s is None else time.monotonic() + duration_s
        while end is None or time.monotonic() < end:
            time.sleep(5.0 if end is None else min(5.0, max(0.0, end - time.monotonic())))
            s = sim.stats
            print(
                f"connected {s.connected}, published {s.published}, acked {s.acked}, "
                f"desired {s.desired}, applied {s.applied}, failed {s.failed}",
                flush=True,
            )
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return 0


def simulate_command(args: Any) -> int:
    """``fleet simulate`` (see :mod:`fleet.cli`): on ``--broker``, or on a private mosquitto."""
    import tempfile
    from pathlib import Path

    from sandbox.mosquitto import MosquittoBroker

    raise_nofile(args.kiosks * 2 + 1024)  # before the broker starts: it inherits the limit
    with tempfile.TemporaryDirectory(prefix="fleet-simulate-") as tmp:
        broker = None
        if args.broker is None:
            broker = MosquittoBroker(Path(tmp) / "broker")
            broker.start()
            host, port = broker.host, broker.port
            print(f"private mosquitto on {broker.address}", flush=True)
        else:
            host, port = args.broker
        config = SimConfig(
            host,
            port,
            kiosks=args.kiosks,
            sites=args.sites,
            health_interval_s=args.health_interval,
            event_interval_s=args.event_interval,
            failure_fraction=args.failure_fraction,
            seed=args.seed,
        )
        try:
            return run(config, duration_s=args.duration)
        finally:
            if broker is not None:
                broker.stop()
