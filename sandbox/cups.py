"""A private cupsd with a simulated network printer: the A4 peer for tests and ``make run``.

``cupsd -f`` runs with its own ServerRoot, spool, cache, state and logs under ``root``, listening
on 127.0.0.1 on a free port (the way CUPS's own test suite runs a private scheduler). Its queue
``kiosk-a4`` sends jobs through CUPS's real ``socket`` backend to a simulated AppSocket
(JetDirect) printer on another free port, which keeps every job it receives as a file in
``out_dir``: those files are exactly what left CUPS.

Why not ``ippeveprinter`` (an IPP Everywhere printer simulator) or ``cups-pdf``: Debian's
ippeveprinter refuses to start without a running Avahi daemon ("Unable to initialize DNS-SD"),
which needs a system D-Bus; and the cups-pdf backend must run as root and writes into directories
named by the system-wide ``/etc/cups/cups-pdf.conf``, so neither can be made private. The queue
is raw (no PPD): the PDF reaches the simulated printer byte for byte.

Job files are not preserved in the spool (``PreserveJobFiles No``), so no certificate with a
resident's name stays behind in CUPS.

Run on its own: ``python -m sandbox.cups --root DIR``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from drivers.simtools import OutputNumbers, close_server, free_port, run_until_signal
from flows.errors import DeviceError
from sandbox.process import stop_process


class SandboxError(DeviceError):
    translation_key = "error.a4.offline"


class AppSocketPrinter:
    """A network printer on raw TCP (port 9100 style): each connection is one job, kept as a file.

    ``paused`` makes it refuse connections (a printer switched off), for error tests.
    """

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.port = 0
        self.jobs = 0  # received in this run
        self._numbers = OutputNumbers(out_dir, "job")
        self._server: socket.socket | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def start(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._server = socket.create_server(("127.0.0.1", self.port))
        self.port = int(self._server.getsockname()[1])
        threading.Thread(target=self._accept, name="appsocket-printer", daemon=True).start()

    def stop(self) -> None:
        """Switch the printer off: the port closes and connections are refused."""
        self._stop.set()
        close_server(self._server)
        self._server = None

    def restart(self) -> None:
        """Switch it on again, on the same port."""
        self._stop = threading.Event()
        self.start()

    def _accept(self) -> None:
        server = self._server
        stop = self._stop
        while server is not None and not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=self._receive, args=(conn,), daemon=True).start()

    def _receive(self, conn: socket.socket) -> None:
        chunks: list[bytes] = []
        with conn:
            conn.settimeout(30)
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return  # a broken job is not paper
                if not data:
                    break
                chunks.append(data)
        if not chunks:
            return
        body = b"".join(chunks)
        with self._lock:
            self.jobs += 1
        number = self._numbers.next()
        ext = "pdf" if body.startswith(b"%PDF") else "bin"
        tmp = self.out_dir / f".job-{number:04d}.tmp"
        tmp.write_bytes(body)
        tmp.replace(self.out_dir / f"job-{number:04d}.{ext}")

    def number_of(self, path: Path) -> int:
        return self._numbers.number_of(path)


_CUPSD_CONF = """\
Listen 127.0.0.1:{port}
LogLevel info
MaxLogSize 1m
Browsing No
WebInterface No
DefaultAuthType None
PreserveJobFiles No
PreserveJobHistory 3600
JobRetryInterval 2
<Location />
  Order allow,deny
  Allow all
</Location>
<Policy default>
  # the kiosk finds its jobs again by name after a restart (exactly-once printing)
  JobPrivateAccess all
  JobPrivateValues none
  <Limit All>
    Order deny,allow
  </Limit>
</Policy>
"""

_CUPS_FILES_CONF = """\
ServerRoot {root}
RequestRoot {root}/spool
CacheDir {root}/cache
StateDir {root}/state
TempDir {root}/tmp
ErrorLog {root}/log/error_log
AccessLog {root}/log/access_log
PageLog {root}/log/page_log
ServerBin /usr/lib/cups
DataDir /usr/share/cups
DocumentRoot /usr/share/cups/doc-root
Printcap {root}/printcap
FileDevice No
{user}
"""


def cupsd_check(cupsd_conf: Path, files_conf: Path, *, timeout_s: float = 20.0) -> str:
    """cupsd's own verdict on a configuration (``cupsd -t``): "" if accepted, else its words.

    cupsd names the directive and the line ("Missing value for Printcap on line 12 of ..."):
    a CUPS update that tightens its parser is then one clear message, not a scheduler that
    silently never starts.
    """
    if shutil.which("cupsd") is None:
        return "cupsd is missing: install the Debian package cups-daemon"
    try:
        result = subprocess.run(
            ["cupsd", "-t", "-c", str(cupsd_conf), "-s", str(files_conf)],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"cupsd -t did not run: {err}"
    if result.returncode == 0:
        return ""
    said = [ln.strip() for ln in (result.stderr + result.stdout).splitlines() if ln.strip()]
    return " ".join(said) or f"cupsd -t exited with {result.returncode}"


def _traversable_by_others(path: Path) -> bool:
    return all(p.stat().st_mode & 0o001 for p in [path, *path.parents] if p.exists())


class CupsSandbox:
    """A private cupsd; ``root`` holds its configuration, spool and logs, ``out_dir`` the paper.

    When cupsd runs as root it runs backends as user ``lp``, which must reach the spool: if a
    parent of ``root`` is closed to others (pytest's temp folders are 0700), the server's files
    go to a fresh folder under the system temp dir instead (``server_root``), removed on stop.
    """

    def __init__(self, root: Path, *, queue: str = "kiosk-a4", out_dir: Path | None = None):
        self.root = Path(root).resolve()
        self.queue = queue
        self.out_dir = (out_dir or self.root / "printed").resolve()
        self.server_root = self.root
        self.port = 0
        self.printer = AppSocketPrinter(self.out_dir)
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: BinaryIO | None = None

    @property
    def server(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 20.0) -> None:
        for tool in ("cupsd", "lpadmin", "lpstat"):
            if shutil.which(tool) is None:
                raise SandboxError(
                    f"{tool} is missing: install the Debian packages cups, cups-client"
                )
        self.root.mkdir(parents=True, exist_ok=True)
        as_root = os.geteuid() == 0
        if as_root and not _traversable_by_others(self.root):
            self.server_root = Path(tempfile.mkdtemp(prefix="kiosk-cups-"))
        root = self.server_root
        for sub in ("spool", "spool/tmp", "cache", "state", "tmp", "log", "ppd", "ssl"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        for path in [root, *root.rglob("*")]:
            if path.is_dir():
                path.chmod(0o777 if path.name in ("spool", "tmp", "cache", "state") else 0o755)
        self.port = free_port()
        cupsd_conf, files_conf = self.write_config(root, as_root=as_root)
        refused = cupsd_check(cupsd_conf, files_conf)
        if refused:
            self.stop()
            raise SandboxError(f"cupsd refuses its configuration (cupsd -t): {refused}")
        self.printer.start()
        self._stderr = (root / "log" / "cupsd.stderr").open("wb")
        self._proc = subprocess.Popen(
            ["cupsd", "-f", "-c", str(cupsd_conf), "-s", str(files_conf)],
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        try:
            self._wait(deadline, self._scheduler_running, "cupsd did not start")
            self._add_queue()
            self._wait(deadline, self._queue_ready, f"queue {self.queue} does not accept jobs")
        except BaseException:
            self.stop()  # never leave a half-started cupsd behind
            raise

    def write_config(self, root: Path, *, as_root: bool) -> tuple[Path, Path]:
        """``cupsd.conf`` and ``cups-files.conf`` for a scheduler in ``root`` on ``self.port``."""
        # cupsd drops to user lp for filters and backends when it runs as root
        user = "User lp\nGroup lp\nSystemGroup root" if as_root else ""
        cupsd_conf, files_conf = root / "cupsd.conf", root / "cups-files.conf"
        cupsd_conf.write_text(_CUPSD_CONF.format(port=self.port))
        files_conf.write_text(_CUPS_FILES_CONF.format(root=root, user=user))
        return cupsd_conf, files_conf

    def _wait(self, deadline: float, ready: Callable[[], bool], what: str) -> None:
        while not ready():
            if self._proc is None or self._proc.poll() is not None:
                raise SandboxError(f"{what}: cupsd exited\n{self.error_log_tail()}")
            if time.monotonic() > deadline:
                raise SandboxError(f"{what} in time\n{self.error_log_tail()}")
            time.sleep(0.1)

    def _queue_ready(self) -> bool:
        """Enabled and accepting, as a client sees it: what ``lp`` would be told."""
        result = subprocess.run(
            ["lpstat", "-h", self.server, "-a", self.queue, "-p", self.queue],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        out = result.stdout
        return result.returncode == 0 and "not accepting" not in out and "disabled" not in out

    def _add_queue(self) -> None:
        self._lp(
            "lpadmin",
            "-p",
            self.queue,
            "-v",
            f"socket://127.0.0.1:{self.printer.port}",
            "-o",
            "printer-error-policy=retry-job",
            "-E",
        )
        self._lp("cupsenable", self.queue)
        self._lp("cupsaccept", self.queue)

    def stop(self) -> None:
        self.printer.stop()
        proc, self._proc = self._proc, None
        stop_process(proc)
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        if self.server_root != self.root:
            shutil.rmtree(self.server_root, ignore_errors=True)

    def printed_files(self) -> list[Path]:
        """The jobs the simulated printer received (in this run and before), oldest first."""
        return sorted(self.out_dir.glob("job-*.*"), key=self.printer.number_of)

    def error_log_tail(self, lines: int = 20) -> str:
        """The end of cupsd's error_log, and what it wrote to stderr (before it had a log)."""
        tail: list[str] = []
        for name in ("cupsd.stderr", "error_log"):
            log = self.server_root / "log" / name
            if log.exists():
                tail += log.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(tail) or "(no error_log)"

    def _scheduler_running(self) -> bool:
        result = subprocess.run(
            ["lpstat", "-h", self.server, "-r"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        return "is running" in result.stdout and "not" not in result.stdout

    def _lp(self, *cmd: str) -> None:
        argv = [cmd[0], "-h", self.server, *cmd[1:]]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
        if result.returncode != 0:
            raise SandboxError(
                f"{' '.join(argv)} failed: {result.stderr.strip()}\n{self.error_log_tail()}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="a private cupsd with a simulated printer")
    parser.add_argument("--root", type=Path, required=True)
    args = parser.parse_args(argv)
    sandbox = CupsSandbox(args.root)
    sandbox.start()
    ready = {"server": sandbox.server, "queue": sandbox.queue, "out_dir": str(sandbox.out_dir)}
    return run_until_signal(ready, sandbox.stop)


if __name__ == "__main__":
    sys.exit(main())
