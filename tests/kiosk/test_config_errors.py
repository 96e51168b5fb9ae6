"""A wrong configuration is answered as a technician needs it: every mistake at once, in words.

Each case runs the ``kiosk`` command as a user would (a subprocess) on a configuration with one
or more mistakes: bytes that are not UTF-8, 5,000 levels of nesting, an unknown key, a wrong
type, a value out of range, several mistakes together, and a state directory that is a file or
cannot be made. The answer is one message on stderr that lists every mistake, one a line, naming
the file and the key; the exit status is the configuration's (2, ``kiosk --help``); and never a
traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

DEEP = 5000


def kiosk(tmp_path: Path, config: bytes, *args: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "kiosk.toml"
    path.write_bytes(config)
    return subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "--config", str(path), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def mistakes(tmp_path: Path, result: subprocess.CompletedProcess[str]) -> list[str]:
    """The mistakes said, after checking how they were said."""
    out = result.stdout + result.stderr
    assert "Traceback" not in out, out
    assert result.returncode == 2, out
    assert result.stdout == "", out
    lines = result.stderr.splitlines()
    if len(lines) == 1:
        assert lines[0].startswith("kiosk: configuration error: "), lines
        said = [lines[0].removeprefix("kiosk: configuration error: ")]
    else:
        assert lines[0] == f"kiosk: {len(lines) - 1} configuration errors:", lines
        assert all(line.startswith("  ") for line in lines[1:]), lines
        said = [line.strip() for line in lines[1:]]
    for line in said:
        assert line.startswith(f"{tmp_path / 'kiosk.toml'}: "), line  # the file, on every line
    return [line.removeprefix(f"{tmp_path / 'kiosk.toml'}: ") for line in said]


def state(tmp_path: Path) -> bytes:
    return f'[state]\ndir = "{tmp_path / "state"}"\n'.encode()


@pytest.mark.parametrize(
    ("body", "said"),
    [
        pytest.param(
            "[station]\nid = 'ab\xff'\n".encode("latin-1"),
            ["is not UTF-8 text: byte 0xff at line 2, column 9 (save the file as UTF-8)"],
            id="not-utf8",
        ),
        pytest.param(
            ("a = " + "[" * DEEP + "]" * DEEP + "\n").encode(),
            ["is not valid TOML for the kiosk: arrays or tables nest too deeply"],
            id="deep-arrays",
        ),
        pytest.param(
            ("a = " + "{b = " * DEEP + "1" + "}" * DEEP + "\n").encode(),
            ["is not valid TOML for the kiosk: arrays or tables nest too deeply"],
            id="deep-inline-tables",
        ),
        pytest.param(
            ("[devices]\naudio_player_args." + ".".join(["a"] * DEEP) + " = 1\n").encode(),
            [
                '[devices] audio_player_args must be a list of texts, e.g. `["-D", "null"]`; '
                "got a table"
            ],
            id="deep-dotted-keys",
        ),
        pytest.param(
            b"[devices]\nprinter = 'cups:a4'\n",
            ["[devices] printer is not a known key (did you mean `a4_printer`?)"],
            id="unknown-key",
        ),
        pytest.param(
            b"[ui]\nwidth = '1920'\n",
            ['[ui] width must be a whole number, without quotes; got `"1920"`'],
            id="wrong-type",
        ),
        pytest.param(
            b"[devices]\nid_reader_baud = 9601\n",
            [
                "[devices] id_reader_baud must be `9600`, `19200`, `38400`, `57600` or `115200`; "
                "got `9601`"
            ],
            id="not-a-choice",
        ),
        pytest.param(
            b"[devices]\nspeech_volume = 1.5\n",
            ["[devices] speech_volume must be from 0 to 1; got `1.5`"],
            id="out-of-range",
        ),
        pytest.param(
            b"[station]\ncard_left_alert_s = 0\n",
            ["[station] card_left_alert_s must be from 1 to 3600; got `0`"],
            id="card-left-alert",
        ),
        pytest.param(
            b"[devices]\nthermal_printer = 'lpt1'\n[ui]\nwidth = 10\nfullscreen = 'yes'\n",
            [
                "[devices] thermal_printer must be `sim`, `sim:PROFILE`, `tcp:HOST:PORT`, "
                "`serial:/dev/…` or "
                "`usb:/dev/…`; got `lpt1`",
                '[ui] fullscreen must be `true` or `false`, without quotes; got `"yes"`',
                "[ui] width must be from 640 to 7680; got `10`",
            ],
            id="three-mistakes",
        ),
        pytest.param(
            b"colour = 'red'\n[stations]\nid = 'a'\n[fleet]\nca_file = 'ca.pem'\n",
            [
                "[fleet] ca_file, cert_file and key_file: set all three or none",
                "[stations] is not a known section (did you mean `station`?)",
                "`colour` is not a known key at the top of the file",
            ],
            id="sections-and-rules",
        ),
    ],
)
@pytest.mark.parametrize("command", ["run", "doctor"])
def test_every_mistake_in_words_at_once(
    tmp_path: Path, command: str, body: bytes, said: list[str]
) -> None:
    result = kiosk(tmp_path, body + state(tmp_path), command)
    assert sorted(mistakes(tmp_path, result)) == sorted(said)


def test_a_state_dir_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("")
    result = kiosk(tmp_path, state(tmp_path), "run")
    assert mistakes(tmp_path, result) == [
        f"[state] dir `{tmp_path / 'state'}` is a file, not a folder; "
        "the kiosk keeps its journal there"
    ]


def test_a_state_dir_under_a_file_cannot_be_made(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    where = tmp_path / "file" / "state"
    result = kiosk(tmp_path, f'[state]\ndir = "{where}"\n'.encode(), "run")
    assert mistakes(tmp_path, result) == [
        f"[state] dir `{where}` cannot be made: `{tmp_path / 'file'}` is a file, not a folder; "
        "the kiosk keeps its journal there"
    ]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder")
def test_a_state_dir_under_a_read_only_folder_cannot_be_made(tmp_path: Path) -> None:
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o500)
    try:
        result = kiosk(tmp_path, f'[state]\ndir = "{parent / "state"}"\n'.encode(), "run")
    finally:
        parent.chmod(0o700)
    assert mistakes(tmp_path, result) == [
        f"[state] dir `{parent / 'state'}` cannot be made or written: Permission denied; "
        "the kiosk keeps its journal there"
    ]


def test_a_state_dir_in_a_read_only_file_system_cannot_be_made(tmp_path: Path) -> None:
    """/proc refuses new folders even to root: the read-only case wherever the tests run."""
    result = kiosk(tmp_path, b'[state]\ndir = "/proc/kiosk-state"\n', "run")
    [said] = mistakes(tmp_path, result)
    assert said.startswith("[state] dir `/proc/kiosk-state` cannot be made or written: ")


def test_the_state_dir_is_reported_with_the_other_mistakes(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("")
    result = kiosk(tmp_path, state(tmp_path) + b"[ui]\nheight = 100\n", "run")
    assert mistakes(tmp_path, result) == [
        "[ui] height must be from 480 to 7680; got `100`",
        f"[state] dir `{tmp_path / 'state'}` is a file, not a folder; "
        "the kiosk keeps its journal there",
    ]


def test_the_agent_says_its_own_mistakes_with_the_others(tmp_path: Path) -> None:
    """The agent needs a broker; its state dir is checked before it logs there (it used to
    end in a NotADirectoryError traceback from the log file)."""
    (tmp_path / "state").write_text("")
    result = kiosk(tmp_path, state(tmp_path) + b"[fleet]\nhealth_interval_s = 0\n", "agent")
    assert mistakes(tmp_path, result) == [
        "[fleet] health_interval_s must be more than 0 and at most 3600; got `0`",
        f"[state] dir `{tmp_path / 'state'}` is a file, not a folder; "
        "the kiosk keeps its journal there",
        "[fleet] broker is empty: the agent needs `HOST:PORT`",
    ]


def test_a_log_folder_that_is_a_file_is_said_in_words(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "logs").write_text("")
    result = kiosk(tmp_path, state(tmp_path) + b'[fleet]\nbroker = "127.0.0.1:1"\n', "agent")
    out = result.stdout + result.stderr
    assert "Traceback" not in out and result.returncode == 2, out
    assert f"[state] dir {tmp_path / 'state'}: {tmp_path / 'state' / 'logs'}" in result.stderr


def test_the_exit_status_is_documented() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "2 the configuration or the command line is wrong" in result.stdout
