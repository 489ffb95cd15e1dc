"""Never lose a run (issue 13, items 9, 10, 11), through the real CLI against real loopback servers
and real files:

- 9: a history database locked by another process, or on a full disk (a 512 KiB tmpfs in a private
  mount namespace), costs only the storing: the verdict is printed, the reports are written and
  mailed, one line says the results were not stored, exit 3. An output path that cannot work (a
  directory given as a file) is exit 2 before any connection to the target.
- 10: three runs finishing in the same second leave three audit-<time>-<random>.json files.
- 11: links planted where the scheduler's lock or evidence-log-heads.txt goes, and directories
  every user (or another user) may write, are refused; the file a link points to is untouched.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from auditor.store import Store
from tests.conftest import ROOT, run_cli
from tests.harness.pki import TestPKI
from tests.harness.servers import PythonTLSServer, free_port
from tests.test_email import PASSWORD, smtp  # noqa: F401  (the real SMTP server fixture)

HSTS = [("Strict-Transport-Security", "max-age=63072000; includeSubDomains")]
PW = {"AUDITOR_TEST_PW": PASSWORD}


@pytest.fixture(scope="module")
def good(pki: TestPKI) -> Iterator[str]:
    """A compliant site (grade A+): without a storage failure its audit exits 0."""
    with PythonTLSServer(pki.issue("never-lose"), response_headers=HSTS) as server:
        yield server.url


def _config(
    directory: Path,
    pki: TestPKI,
    url: str,
    *,
    database: str = "hist.sqlite",
    output: str = "out",
    mail_port: int | None = None,
    extra: str = "",
    timeout: float = 3,
    bundle: bool = True,
) -> Path:
    mail = ""
    if mail_port is not None:
        mail = (
            f'[email]\nhost = "127.0.0.1"\nport = {mail_port}\nusername = "auditor"\n'
            f'password_env = "AUDITOR_TEST_PW"\nfrom = "auditor@example.test"\nto = ["ops@example.test"]\n'
            f'ca_bundle = "{pki.root_path}"\ntimeout = 3\nretries = 0\nnotify = "always"\n'
        )
    path = directory / "config.toml"
    ca_bundle = f'ca_bundle = "{pki.root_path}"\n' if bundle else ""
    path.write_text(
        f'[scan]\ntimeout = {timeout}\n[history]\ndatabase = "{database}"\n[output]\n'
        f'directory = "{output}"\n{extra}{mail}[[targets]]\nname = "site"\nurl = "{url}"\n'
        f'ip = "127.0.0.1"\n{ca_bundle}http_port = 9\n'
    )
    return path


@contextmanager
def _locked(database: Path) -> Iterator[None]:
    """Another process holding the database's write lock (BEGIN EXCLUSIVE, kept open)."""
    code = (
        "import sqlite3, sys\nc = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "c.execute('BEGIN EXCLUSIVE')\nprint('locked', flush=True)\nsys.stdin.read()\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(database)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        yield
    finally:
        assert holder.stdin is not None and holder.stdout is not None
        holder.stdin.close()
        holder.wait(timeout=10)
        holder.stdout.close()


def _stored(database: Path) -> int:
    store = Store(str(database), create=False)
    try:
        return len(store.history())
    finally:
        store.close()


def _lines(text: str, needle: str) -> list[str]:
    return [line for line in text.splitlines() if needle in line]


# ------------------------------------------------------------------ item 9: storage failure


def test_a_locked_history_costs_only_the_storing(good, pki, tmp_path, smtp) -> None:  # noqa: F811
    inbox, port = smtp
    config = _config(tmp_path, pki, good, mail_port=port)
    Store(str(tmp_path / "hist.sqlite")).close()  # an existing history (WAL, as the auditor keeps it)
    with _locked(tmp_path / "hist.sqlite"):
        run = run_cli(
            "audit",
            "--config",
            str(config),
            "--store",
            "--email",
            "--quiet",
            "--json",
            str(tmp_path / "a.json"),
            "--html",
            str(tmp_path / "a.html"),
            env=PW,
        )
    assert run.code == 3, run.stderr
    assert run.stdout.splitlines() == [
        "COMPLIANT site  grade A+",
        "Policy verdict: 1 compliant, 0 not compliant, 0 not audited",
    ]
    (line,) = _lines(run.stderr, "NOT stored")
    assert line == (
        f"auditor: the results were NOT stored in the history: history database "
        f"{tmp_path / 'hist.sqlite'}: locked by another process (try again later)"
    )
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr  # --quiet: the failure only
    report = json.loads((tmp_path / "a.json").read_text())
    assert report["targets"][0]["compliant"] and "locked by another process" in report["meta"]["not_stored"]
    assert "evidence_log_head" not in report["meta"]
    assert "COMPLIANT" in (tmp_path / "a.html").read_text()
    assert (
        len(list((tmp_path / "out").glob("audit-*.json"))) == 1
        and (tmp_path / "out" / "latest.json").is_file()
    )
    assert len(inbox.messages) == 1  # mailed all the same
    assert _stored(tmp_path / "hist.sqlite") == 0


def test_the_nightly_run_with_a_locked_history_still_writes_and_mails(good, pki, tmp_path, smtp) -> None:  # noqa: F811
    inbox, port = smtp
    config = _config(tmp_path, pki, good, mail_port=port)
    Store(str(tmp_path / "hist.sqlite")).close()
    with _locked(tmp_path / "hist.sqlite"):
        once = run_cli("schedule", "--config", str(config), "--once", env=PW)
    assert once.code == 3, once.stderr
    assert once.stdout.splitlines()[0] == "COMPLIANT site  grade A+"
    assert len(_lines(once.stderr, "NOT stored in the history")) == 1
    assert _lines(once.stderr, "the history was not pruned")  # the prune before the scan met the lock too
    assert len(list((tmp_path / "out").glob("nightly-*.json"))) == 1
    assert len(list((tmp_path / "out").glob("nightly-*.html"))) == 1
    assert len(inbox.messages) == 1
    assert _stored(tmp_path / "hist.sqlite") == 0


def test_a_full_disk_costs_only_what_is_on_it(good, pki, tmp_path) -> None:
    """The history and the output directory on a full 512 KiB tmpfs (private mount namespace): the
    verdict is printed, --json and --html (on another disk) are written, one line each for the
    storing and the two files that did not fit, exit 3."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare to mount a small tmpfs in a private mount namespace")
    full = tmp_path / "full"
    full.mkdir()
    config = _config(tmp_path, pki, good, database=str(full / "hist.sqlite"), output=str(full / "out"))
    fill = (
        "import os, sys\nfrom pathlib import Path\nfrom auditor.store import Store\n"
        "mnt = Path(sys.argv[1])\nStore(str(mnt / 'hist.sqlite')).close()\n(mnt / 'out').mkdir()\n"
        "st = os.statvfs(mnt)\n"  # leave 40 KiB: SQLite's -shm (32 KiB) fits, a stored scan does not
        "(mnt / 'filler').write_bytes(bytes(st.f_bavail * st.f_frsize - 40960))\n"
    )
    script = (
        f"mount -t tmpfs -o size=512k,mode=0700 tmpfs {full} || exit 97\n"
        f'{sys.executable} -c "$FILL" {full} || exit 98\n'
        f"exec {sys.executable} -m auditor audit --config {config} --store --quiet "
        f"--json {tmp_path / 'a.json'} --html {tmp_path / 'a.html'}\n"
    )
    proc = subprocess.run(
        ["unshare", "-m", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "FILL": fill, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore"},
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode == 97:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout.splitlines()[0] == "COMPLIANT site  grade A+"
    (stored,) = _lines(proc.stderr, "NOT stored")
    assert stored.endswith(f"history database {full / 'hist.sqlite'}: database or disk is full"), stored
    unwritten = _lines(proc.stderr, "No space left on device")
    assert len(unwritten) == 2 and all(
        line.startswith("auditor: output.directory: cannot write") for line in unwritten
    )
    assert json.loads((tmp_path / "a.json").read_text())["meta"]["not_stored"].endswith(
        "database or disk is full"
    )
    assert "COMPLIANT" in (tmp_path / "a.html").read_text()
    assert not full.joinpath("hist.sqlite").exists()  # the tmpfs is gone with its namespace


class _Listener:
    """A port that accepts connections and says nothing: did the run connect at all?"""

    def __enter__(self) -> _Listener:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"https://127.0.0.1:{self.sock.getsockname()[1]}/"
        return self

    def connected(self) -> bool:
        self.sock.setblocking(False)
        try:
            self.sock.accept()[0].close()
        except BlockingIOError:
            return False
        return True

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


@pytest.mark.parametrize(
    ("option", "make"),
    [
        ("--json", "dir"),
        ("--html", "dir"),
        ("--csv", "dir"),
        ("--junit", "dir"),
        ("--json", "under-a-file"),
        ("output.directory", "file"),
    ],
)
def test_an_output_path_that_cannot_work_is_refused_before_scanning(option, make, pki, tmp_path) -> None:
    """`--json DIR` passed the checks and failed after the scan (exit 2 then, no report, no mail)."""
    target = tmp_path / "there"
    if make == "dir":
        target.mkdir()
    else:
        (tmp_path / "a-file").write_text("x")
        target = tmp_path / "a-file" / "report" if make == "under-a-file" else tmp_path / "a-file"
    with _Listener() as listener:
        if option == "output.directory":
            config = _config(tmp_path, pki, listener.url, output=str(target))
            run = run_cli("audit", "--config", str(config))
        else:
            config = _config(tmp_path, pki, listener.url)
            run = run_cli("audit", "--config", str(config), option, str(target))
        assert run.code == 2, run.stderr
        assert not listener.connected(), "the target was scanned before the usage error"
    (line,) = run.stderr.strip().splitlines()
    expected = {
        "dir": "is a directory; give the path of a file to write",
        "file": "is not a directory",
        "under-a-file": "cannot create",
    }[make]
    assert line.startswith(f"auditor: {option}: ") and expected in line, line


def test_the_nightly_run_refuses_an_output_path_that_cannot_work_before_scanning(pki, tmp_path) -> None:
    (tmp_path / "out" / "junit.xml").mkdir(parents=True)
    with _Listener() as listener:
        config = _config(tmp_path, pki, listener.url, extra='junit = "junit.xml"\n')
        once = run_cli("schedule", "--config", str(config), "--once")
        assert once.code == 2, once.stderr
        assert not listener.connected()
    assert once.stderr.startswith("auditor: output.junit: ") and "is a directory" in once.stderr
    assert not (tmp_path / "hist.sqlite").exists()


# ------------------------------------------------------------------ item 10: unique report names


class _Gate:
    """A port that accepts connections and holds them, silent, until a given wall-clock time just
    after a whole second; then it closes them all and stops listening, so every audit of it ends
    at that moment (the scan timeout is longer than the hold)."""

    def __init__(self, hold: float) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"https://127.0.0.1:{self.sock.getsockname()[1]}/"
        self.release = int(time.time() + hold) + 1.02
        self.held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self.sock.settimeout(0.05)
        while time.time() < self.release:
            try:
                self.held.append(self.sock.accept()[0])
            except TimeoutError:
                continue
        self.sock.close()
        for conn in self.held:
            conn.close()


def test_three_runs_in_the_same_second_keep_three_reports(pki, tmp_path) -> None:
    gate = _Gate(hold=10)  # time for three interpreters to start and connect on two busy cores
    config = _config(tmp_path, pki, gate.url, timeout=40)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "auditor", "audit", "--config", str(config)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    written = []
    for proc in runs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 3, err  # the target is not audited (closed on it)
        written += [
            line.removeprefix("report written: ")
            for line in err.splitlines()
            if line.startswith("report written: ") and "audit-" in line
        ]
    stamps = {Path(p).name.split("-")[1] for p in written}
    assert len(stamps) == 1, f"the runs did not end in the same second ({stamps}): nothing was tested"
    files = sorted((tmp_path / "out").glob("audit-*.json"))
    assert len(files) == 3 and sorted(Path(p).name for p in written) == [f.name for f in files]
    assert all(
        len(f.name.split("-")[2].removesuffix(".json")) == 8 for f in files
    )  # audit-<time>-<random>.json


# ------------------------------------------------------------------ item 11: links and shared directories


def _victim(tmp_path: Path) -> Path:
    victim = tmp_path / "elsewhere" / "precious.txt"
    victim.parent.mkdir()
    victim.write_text("precious data\n")
    return victim


def test_a_link_planted_as_the_scheduler_lock_is_refused(pki, tmp_path) -> None:
    """A symbolic link, and a hard link, where hist.sqlite.lock goes: the scheduler used to truncate
    the file behind it and write its pid there."""
    victim = _victim(tmp_path)
    config = _config(tmp_path, pki, f"https://127.0.0.1:{free_port()}/")
    lock = tmp_path / "hist.sqlite.lock"
    for plant, says in (
        (lambda: lock.symlink_to(victim), "it is a symbolic link"),
        (lambda: os.link(victim, lock), "it has 2 names (hard links)"),
    ):
        plant()
        once = run_cli("schedule", "--config", str(config), "--once")
        assert victim.read_text() == "precious data\n"
        assert once.code == 3, once.stderr
        (line,) = once.stderr.strip().splitlines()
        assert line.startswith(f"auditor: refusing the scheduler lock {lock}: {says}"), line
        assert not (tmp_path / "hist.sqlite").exists()  # refused before anything else
        lock.unlink()
    once = run_cli("schedule", "--config", str(config), "--once")  # the lock file it creates itself is fine
    assert once.code == 3 and "history: stored 1 result(s)" in once.stderr, once.stderr
    assert lock.is_file() and not lock.is_symlink() and (lock.stat().st_mode & 0o777) == 0o600


@pytest.mark.parametrize("dangling", [False, True])
def test_a_link_planted_as_the_heads_file_is_refused(dangling, pki, tmp_path) -> None:
    """evidence-log-heads.txt as a link: a line was appended to the file behind it (or, dangling,
    a new file created where the link pointed)."""
    victim = _victim(tmp_path)
    if dangling:
        victim = victim.parent / "created-through-the-link"
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "evidence-log-heads.txt").symlink_to(victim)
    with _Listener() as listener:
        config = _config(tmp_path, pki, listener.url)
        for command in (["audit", "--store"], ["schedule", "--once"]):
            run = run_cli(*command, "--config", str(config))
            assert victim.read_text() == "precious data\n" if not dangling else not victim.exists()
            assert run.code == 3, run.stderr
            (line,) = run.stderr.strip().splitlines()
            assert line == (
                f"auditor: evidence log heads file {tmp_path / 'out' / 'evidence-log-heads.txt'}: "
                "refusing it: it is a symbolic link, which the auditor never writes through"
            ), line
        assert not listener.connected()  # refused before scanning
    assert victim.read_text() == "precious data\n" if not dangling else not victim.exists()
    assert _stored(tmp_path / "hist.sqlite") == 0


def test_the_heads_file_is_never_written_through_a_link_planted_during_the_scan(pki, tmp_path) -> None:
    """The check before the scan passed; the link appears while the audit runs (O_NOFOLLOW at the write)."""
    victim = _victim(tmp_path)
    heads = tmp_path / "out" / "evidence-log-heads.txt"
    heads.parent.mkdir()
    gate = _Gate(hold=5)  # holds the audit while the link is planted

    def plant() -> None:
        while not gate.held:
            time.sleep(0.05)
        heads.symlink_to(victim)

    planter = threading.Thread(target=plant)
    planter.start()
    config = _config(tmp_path, pki, gate.url, timeout=40)
    run = run_cli("audit", "--store", "--config", str(config), "--quiet")
    planter.join()
    assert run.code == 3 and heads.is_symlink(), run.stderr
    assert _lines(run.stderr, f"cannot record the evidence log head in {heads}: it is a symbolic link")
    assert victim.read_text() == "precious data\n"
    assert _stored(tmp_path / "hist.sqlite") == 1  # the scan itself is stored


@pytest.mark.parametrize("shared", ["database", "output"])
def test_a_directory_every_user_may_write_is_refused(shared, pki, tmp_path) -> None:
    where = tmp_path / shared
    where.mkdir(mode=0o777)
    where.chmod(0o1777)  # even with the sticky bit, as /tmp: anyone may plant a name not yet taken
    database = str(where / "hist.sqlite") if shared == "database" else "hist.sqlite"
    with _Listener() as listener:
        config = _config(
            tmp_path, pki, listener.url, database=database, output=str(where) if shared == "output" else "out"
        )
        for command in (["audit", "--store"], ["schedule", "--once"]):
            run = run_cli(*command, "--config", str(config))
            assert f"{where} is writable by every user" in run.stderr, (command, run.stderr)
            assert run.code == 3, run.stderr
            (line,) = run.stderr.strip().splitlines()
            assert "chmod o-w" in line, line
        assert not listener.connected()
    assert not list(where.glob("hist.sqlite*"))
    if (tmp_path / "hist.sqlite").exists():  # opened (so an unusable history is found first), never written
        assert _stored(tmp_path / "hist.sqlite") == 0


_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def _nobody_can_run() -> None:
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to act as another user")
    probe = subprocess.run(
        [*_NOBODY, sys.executable, "-c", "import auditor"],
        cwd=ROOT,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    if probe.returncode != 0:
        pytest.skip("the user nobody cannot run this checkout's Python")


def test_root_refuses_a_directory_another_user_controls(pki, tmp_path) -> None:
    """The history kept in a directory of the user nobody, who (really, as nobody) plants a link to
    a file of root's where the lock goes; root's nightly run used to truncate that file."""
    _nobody_can_run()
    base = Path(tempfile.mkdtemp(prefix="auditor-nobody-"))
    try:
        base.chmod(0o755)
        theirs = base / "theirs"
        theirs.mkdir()
        os.chown(theirs, 65534, 65534)
        victim = _victim(tmp_path)  # root's, in a directory nobody cannot even read
        plant = subprocess.run(
            [*_NOBODY, "ln", "-s", str(victim), str(theirs / "hist.sqlite.lock")],
            capture_output=True,
            text=True,
        )
        assert plant.returncode == 0, plant.stderr
        config = _config(
            tmp_path, pki, f"https://127.0.0.1:{free_port()}/", database=str(theirs / "hist.sqlite")
        )
        once = run_cli("schedule", "--config", str(config), "--once")
        assert victim.read_text() == "precious data\n"
        assert once.code == 3, once.stderr
        (line,) = once.stderr.strip().splitlines()
        assert f"{theirs} belongs to another user (uid 65534)" in line, line
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_a_user_keeps_the_history_in_their_own_directory(pki, tmp_path) -> None:
    """The refusals are no obstacle to an ordinary user: nobody, in a directory of its own, stores a
    nightly run (its lock file and heads file created owner-only)."""
    _nobody_can_run()
    base = Path(tempfile.mkdtemp(prefix="auditor-nobody-"))
    try:
        base.chmod(0o755)
        os.chown(base, 65534, 65534)
        config = _config(base, pki, f"https://127.0.0.1:{free_port()}/", bundle=False)
        once = subprocess.run(
            [*_NOBODY, sys.executable, "-m", "auditor", "schedule", "--config", str(config), "--once"],
            cwd=base,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore"},
        )
        assert once.returncode == 3 and "history: stored 1 result(s)" in once.stderr, once.stderr
        for name in ("hist.sqlite.lock", "out/evidence-log-heads.txt"):
            info = (base / name).lstat()
            assert info.st_uid == 65534 and (info.st_mode & 0o777) == 0o600, name
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_a_device_or_fifo_given_as_a_report_path_is_written_into_not_replaced(tmp_path: Path) -> None:
    """`--json /dev/null` as root once replaced the device with a regular file: a path that is not a
    regular file is written into as it is (a FIFO stands in for the device; /dev/null is checked last,
    after the FIFO has shown the fix is in)."""
    import threading

    from auditor.safe_files import write_atomic

    fifo = tmp_path / "reports.fifo"
    os.mkfifo(fifo)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()), daemon=True)
    reader.start()
    write_atomic(fifo, '{"report": 1}')
    reader.join(timeout=10)
    assert got == ['{"report": 1}']
    assert fifo.is_fifo(), "the FIFO was replaced by a regular file"
    write_atomic(Path(os.devnull), "discarded")
    assert Path(os.devnull).is_char_device()
