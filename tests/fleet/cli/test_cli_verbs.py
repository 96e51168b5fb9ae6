"""``fleet``'s one verb style: ``enroll add|revoke|crl|list|set-doc-key``, ``alerts list|ack``,
``user add|list|disable|enable|set-password``, ``keys list|rotate``, each against a SQLite console
database, and the old mode flags still working with a one-line deprecation on stderr."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select as sql_select

from fleet.cli import main
from fleet.cli.legacy import translate
from fleet.console.auth import check_password
from fleet.console.store import Alert, AuditEntry, Station, Store, User
from tests.fleet.console.test_console import PASSWORD, client, login, make_console
from tests.fleet.console.test_enroll import ca_args, doc_signer, make_ca, signer_pub

REPO = Path(__file__).resolve().parents[3]
SITE = "zibo-gx"


def fleet(capsys: pytest.CaptureFixture[str], *argv: Any) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'console.sqlite3'}"


# --- the old forms, rewritten ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "said"),
    [
        (
            ["enroll", "--revoke", "s", "st", "--reason", "r"],
            ["enroll", "revoke", "s", "st", "--reason", "r"],
            "fleet enroll revoke",
        ),
        (
            ["enroll", "s", "st", "--out", "d"],
            ["enroll", "add", "s", "st", "--out", "d"],
            "fleet enroll add",
        ),
        (["enroll", "--db", "u", "--list"], ["enroll", "list", "--db", "u"], "fleet enroll list"),
        (
            ["enroll", "--write-crl", "--crl", "f"],
            ["enroll", "crl", "--crl", "f"],
            "fleet enroll crl",
        ),
        (
            ["enroll", "--set-doc-key", "s", "st"],
            ["enroll", "set-doc-key", "s", "st"],
            "set-doc-key",
        ),
        (["alerts", "--json"], ["alerts", "list", "--json"], "fleet alerts list"),
        (
            ["alerts", "--db", "u", "--ack", "7", "--as", "t", "--json"],
            ["alerts", "ack", "7", "--db", "u", "--as", "t"],
            "fleet alerts ack",
        ),
        (
            ["alerts", "--ack=7", "--as", "t"],
            ["alerts", "ack", "7", "--as", "t"],
            "fleet alerts ack",
        ),
        (
            ["user", "--db", "u", "--name", "n", "--role", "admin"],
            ["user", "add", "n", "--db", "u", "--role", "admin"],
            "fleet user add",
        ),
    ],
)
def test_old_forms_become_verbs_with_a_deprecation(
    old: list[str], new: list[str], said: str
) -> None:
    argv, note = translate(old)
    assert argv == new
    assert note is not None and "deprecated" in note and said in note and "\n" not in note


@pytest.mark.parametrize(
    "argv",
    [["enroll", "add", "s", "st"], ["enroll"], ["enroll", "--help"], ["alerts", "list"],
     ["user", "set-password", "n"], ["keys", "list"], ["rollout", "list"], []],
)  # fmt: skip
def test_the_verb_style_is_left_alone(argv: list[str]) -> None:
    assert translate(argv) == (argv, None)


# --- fleet user -----------------------------------------------------------------------------------


def test_user_verbs_add_list_disable_enable_set_password(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    console = make_console(None, db_url)  # users tech, oper and boss (admin), password PASSWORD
    try:
        http, _ = login(console, "tech")
        assert http.get("/verify").status_code == 200
        secret = tmp_path / "new.password"
        secret.write_text("a new password, long enough\n")

        code, out, err = fleet(
            capsys, "user", "add", "anna", "--role", "operator", "--password-file", secret,
            "--db", db_url,
        )  # fmt: skip
        assert (code, out.strip()) == (0, "user anna (operator) added"), err
        code, _, err = fleet(
            capsys, "user", "add", "anna", "--role", "admin", "--password-file", secret,
            "--db", db_url,
        )  # fmt: skip
        assert code == 1 and "exists" in err
        short = tmp_path / "short"
        short.write_text("tiny-pw")
        code, out, err = fleet(
            capsys, "user", "add", "bo", "--role", "admin", "--password-file", short, "--db", db_url
        )
        assert code == 1 and "at least 10 characters" in err and "tiny-pw" not in out + err

        # list: names, roles, states; never a password or its hash
        code, out, _ = fleet(capsys, "user", "list", "--db", db_url)
        assert code == 0
        assert [line.split()[:3] for line in out.splitlines()[1:]] == [
            ["anna", "operator", "enabled"],
            ["boss", "admin", "enabled"],
            ["oper", "operator", "enabled"],
            ["tech", "technician", "enabled"],
        ]
        code, listed, _ = fleet(capsys, "user", "list", "--db", db_url, "--json")
        assert code == 0 and {u["name"] for u in json.loads(listed)} >= {"anna", "tech"}
        assert all(set(u) == {"name", "role", "disabled", "created_at"} for u in json.loads(listed))
        for said in (out, listed):
            assert "argon2" not in said and PASSWORD not in said

        # disable: the open session ends, a login is refused, the console's check says no
        code, out, err = fleet(capsys, "user", "disable", "tech", "--db", db_url)
        assert code == 0 and "can no longer log in" in out, err
        assert http.get("/verify").status_code != 200
        with console.store.session() as db:
            assert check_password(db, "tech", PASSWORD) is None
        form = client(console, "192.0.2.9")
        page = form.get("/login").text
        token = page.split('name="csrf_token" value="')[1].split('"')[0]
        refused = form.post(
            "/login", data={"name": "tech", "password": PASSWORD, "csrf_token": token}
        )
        assert refused.status_code == 401
        assert "tech  technician  disabled" in fleet(capsys, "user", "list", "--db", db_url)[1]
        assert fleet(capsys, "user", "disable", "ghost", "--db", db_url)[0] == 1
        # the last enabled admin stays
        code, _, err = fleet(capsys, "user", "disable", "boss", "--db", db_url)
        assert code == 1 and "last enabled admin" in err
        # enable: they log in again
        assert fleet(capsys, "user", "enable", "tech", "--db", db_url)[0] == 0
        login(console, "tech")

        # set-password: the old one no longer works, the new one does, open sessions end
        http, _ = login(console, "oper")
        code, out, err = fleet(
            capsys, "user", "set-password", "oper", "--password-file", secret, "--db", db_url
        )
        assert code == 0 and "a new password" not in out + err, err
        assert http.get("/verify").status_code != 200
        with console.store.session() as db:
            assert check_password(db, "oper", PASSWORD) is None
            assert check_password(db, "oper", "a new password, long enough") is not None
            actions = [
                (a.actor, a.action, a.target)
                for a in db.scalars(sql_select(AuditEntry).where(AuditEntry.actor == "cli"))
            ]
            assert all(not a.detail for a in db.scalars(sql_select(AuditEntry).where(
                AuditEntry.action == "set_password")))  # fmt: skip
        for done in (
            ("cli", "create_user", "user/anna"),
            ("cli", "disable_user", "user/tech"),
            ("cli", "enable_user", "user/tech"),
            ("cli", "set_password", "user/oper"),
        ):
            assert done in actions
    finally:
        console.store.close()


def test_the_old_user_form_still_adds_and_warns(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD)
    code, out, err = fleet(
        capsys, "user", "--db", db_url, "--name", "old", "--role", "technician",
        "--password-file", secret,
    )  # fmt: skip
    assert code == 0 and "user old (technician) added" in out
    assert err.count("\n") == 1 and "deprecated: use `fleet user add NAME" in err
    store = Store(db_url)
    with store.session() as db:
        assert check_password(db, "old", PASSWORD) is not None
    store.close()


def _read_until(master: int, wanted: bytes, timeout: float = 30.0) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while wanted not in seen:
        assert time.monotonic() < deadline, f"no {wanted!r} in {seen!r}"
        if select.select([master], [], [], 0.2)[0]:
            try:
                seen += os.read(master, 4096)
            except OSError:
                break
    return seen


def test_set_password_asks_twice_on_the_terminal_without_echo(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert fleet(capsys, "user", "list", "--db", db_url)[0] == 0  # the schema
    store = Store(db_url)
    with store.session() as db:
        from fleet.console.auth import create_user

        create_user(db, "tech", PASSWORD, "technician")
    new = "typed on a terminal"
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fleet.cli", "user", "set-password", "tech", "--db", db_url],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            start_new_session=True,  # no controlling terminal: getpass reads the pty given
        )
        seen = _read_until(master, b"password for tech:")
        os.write(master, new.encode() + b"\n")
        seen += _read_until(master, b"the same again:")
        os.write(master, new.encode() + b"\n")
        assert proc.wait(timeout=60) == 0
        seen += _read_until(master, b"sessions ended")
    finally:
        os.close(slave)
        os.close(master)
    assert new.encode() not in seen  # never echoed
    with store.session() as db:
        assert check_password(db, "tech", new) is not None
    store.close()
    # without a terminal and without --password-file: refused, nothing changed
    done = subprocess.run(
        [sys.executable, "-m", "fleet.cli", "user", "set-password", "tech", "--db", db_url],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=60,
    )
    assert done.returncode == 2 and "--password-file" in done.stderr


# --- fleet enroll ---------------------------------------------------------------------------------


def test_enroll_verbs_and_their_old_flags(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    make_ca(tmp_path)
    doc_signer(tmp_path / "terminal")
    crl = tmp_path / "fleet.crl"
    code, out, err = fleet(
        capsys, "enroll", "add", SITE, "st-0001", *ca_args(tmp_path), "--out", tmp_path / "a",
        "--db", db_url,
    )  # fmt: skip
    assert code == 0 and "enrolled zibo-gx/st-0001" in out and err == ""
    assert "fleet enroll set-doc-key" in out  # the hint names the verb
    code, out, err = fleet(
        capsys, "enroll", "set-doc-key", SITE, "st-0001", "--doc-key-pub", signer_pub(tmp_path),
        "--db", db_url, "--json",
    )  # fmt: skip
    assert code == 0 and json.loads(out)["enrolment"]["doc_key_id"], err
    code, out, _ = fleet(capsys, "enroll", "list", "--db", db_url, "--json")
    assert [e["state"] for e in json.loads(out)["enrolments"]] == ["active"]
    code, out, err = fleet(
        capsys, "enroll", "crl", *ca_args(tmp_path), "--crl", crl, "--db", db_url
    )
    assert code == 0 and "0 revoked" in out and crl.exists(), err
    code, _, err = fleet(
        capsys, "enroll", "revoke", SITE, "st-0001", "--reason", "x", "--db", db_url
    )
    assert code == 2 and "revoke needs --crl" in err
    code, out, err = fleet(
        capsys, "enroll", "revoke", SITE, "st-0001", "--reason", "stolen", *ca_args(tmp_path),
        "--crl", crl, "--db", db_url,
    )  # fmt: skip
    assert code == 0 and "revoked zibo-gx/st-0001: stolen" in out and "1 revoked" in out, err

    # the old flags: the same work, and one line on stderr naming the verb
    code, out, err = fleet(
        capsys, "enroll", SITE, "st-0002", *ca_args(tmp_path), "--out", tmp_path / "b",
        "--db", db_url,
    )  # fmt: skip
    assert code == 0 and "enrolled zibo-gx/st-0002" in out
    assert err.count("\n") == 1 and "deprecated: use `fleet enroll add SITE STATION" in err
    code, out, err = fleet(
        capsys, "enroll", "--revoke", SITE, "st-0002", "--reason", "gone", *ca_args(tmp_path),
        "--crl", crl, "--db", db_url,
    )  # fmt: skip
    assert code == 0 and "2 revoked" in out and "use `fleet enroll revoke" in err
    code, out, err = fleet(
        capsys, "enroll", "--write-crl", *ca_args(tmp_path), "--crl", crl, "--db", db_url
    )
    assert code == 0 and "2 revoked" in out and "use `fleet enroll crl" in err
    code, out, err = fleet(
        capsys, "enroll", "--set-doc-key", SITE, "st-0002", "--doc-key-pub", signer_pub(tmp_path),
        "--db", db_url,
    )  # fmt: skip
    assert "use `fleet enroll set-doc-key" in err  # (refused: st-0002 is revoked) but understood
    code, out, err = fleet(capsys, "enroll", "--list", "--db", db_url, "--json")
    assert code == 0 and len(json.loads(out)["enrolments"]) == 2
    assert "use `fleet enroll list" in err
    with pytest.raises(SystemExit) as usage:  # two modes at once: refused, as before
        main(["enroll", "--list", "--write-crl", "--db", db_url])
    assert usage.value.code == 2


# --- fleet alerts ---------------------------------------------------------------------------------


def test_alerts_list_and_ack_and_their_old_forms(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    store = Store(db_url)
    store.migrate()
    now = time.time()
    with store.session() as db:
        from fleet.console.auth import create_user

        create_user(db, "tech", PASSWORD, "technician")
        row = Station(site=SITE, station="st-1")
        db.add(row)
        db.flush()
        ids = []
        for kind in ("offline", "offline"):
            alert = Alert(station_id=row.id, kind=kind, raised_at=now, last_at=now)
            db.add(alert)
            db.flush()
            ids.append(alert.id)
    code, out, err = fleet(capsys, "alerts", "list", "--db", db_url, "--json")
    assert (
        code == 0 and [a["id"] for a in json.loads(out)] == sorted(ids) and "deprecated" not in err
    )
    code, out, err = fleet(capsys, "alerts", "ack", ids[0], "--as", "tech", "--db", db_url)
    assert code == 0 and f"alert {ids[0]} acknowledged by tech" in out, err
    with pytest.raises(SystemExit):  # --as is required by the verb
        main(["alerts", "ack", str(ids[1]), "--db", db_url])
    code, out, err = fleet(capsys, "alerts", "--db", db_url, "--ack", ids[1], "--as", "tech")
    assert code == 0 and f"alert {ids[1]} acknowledged" in out
    assert err.count("\n") == 1 and "use `fleet alerts ack ID" in err
    code, out, err = fleet(capsys, "alerts", "--db", db_url, "--json", "--all")
    assert code == 0 and all(a["acknowledged_by"] == "tech" for a in json.loads(out))
    assert "use `fleet alerts list`" in err
    store.close()


# --- fleet keys rotate ----------------------------------------------------------------------------


def test_keys_rotate_replaces_an_online_key_and_is_audited(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from fleet.trust.catalog_repo import CatalogRepository

    repo_dir, offline = tmp_path / "repo", tmp_path / "root-keys"
    repo = CatalogRepository.create(repo_dir, offline)
    [old] = [k.keyid for k in repo.keys_of("snapshot")]
    Store(db_url).migrate()

    # without the root keys at hand: refused, and the old key is left where it was
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = fleet(
        capsys, "keys", "rotate", "snapshot", "--repo", repo_dir, "--root-keys", empty
    )
    assert code == 1 and "must sign" in err
    assert (repo_dir / "keys" / f"{old}.pem").exists()
    assert CatalogRepository(repo_dir).root.signed.version == 1

    code, out, err = fleet(
        capsys, "keys", "rotate", "snapshot", "--repo", repo_dir, "--root-keys", offline,
        "--db", db_url, "--json",
    )  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    assert report["old_keyids"] == [old] and report["keyid"] != old and report["root_version"] == 2
    after = CatalogRepository(repo_dir)
    assert [k.keyid for k in after.keys_of("snapshot")] == [report["keyid"]]
    assert not (repo_dir / "keys" / f"{old}.pem").exists()
    assert (repo_dir / "keys" / f"{report['keyid']}.pem").stat().st_mode & 0o077 == 0
    store = Store(db_url)
    with store.session() as db:
        [entry] = db.scalars(sql_select(AuditEntry).where(AuditEntry.action == "rotate_key"))
        assert (entry.actor, entry.target, entry.detail["keyid"]) == (
            "cli", "catalog/snapshot", report["keyid"],
        )  # fmt: skip
    store.close()
    code, out, _ = fleet(capsys, "keys", "list", "--repo", repo_dir, "--json")
    roles = {r["role"]: r for r in json.loads(out)["tuf"]["roles"]}
    assert roles["snapshot"]["keyids"] == [report["keyid"]] and roles["root"]["version"] == 2
    with pytest.raises(SystemExit):  # root keys are rotated by fleet catalog rotate-root
        main(["keys", "rotate", "root", "--repo", str(repo_dir), "--root-keys", str(offline)])


def test_user_roles_in_the_parser_are_the_consoles() -> None:
    from fleet.cli.parser import USER_ROLES
    from fleet.console.store import ROLES

    assert USER_ROLES == ROLES
    assert User.__tablename__ == "users"
