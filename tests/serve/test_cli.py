"""`voxedge serve` on the command line: beyond loopback only with a token, refused in one clear line
before anything is loaded or bound. (The soak test starts the real command on 127.0.0.1.)"""

import pytest

from voxedge.cli import main
from voxedge.serve.auth import is_loopback


@pytest.mark.parametrize("args, says", [
    (["--http", "0.0.0.0:8000"], "--http 0.0.0.0:8000 would accept connections from other machines: pass --token"),
    (["--wyoming", "tcp://0.0.0.0:10300"], "--wyoming 0.0.0.0:10300 would accept connections from other machines"),
    (["--http", "[::]:8000", "--wyoming", "tcp://127.0.0.1:10300"], "--http [::]:8000 would accept connections"),
    (["--http", "127.0.0.1:8000", "--token", "short"], "--token must be at least 16 characters"),
    (["--http", "localhost"], "--http 'localhost' is not HOST:PORT"),
    (["--wyoming", "127.0.0.1:10300"], "--wyoming '127.0.0.1:10300' is not tcp://HOST:PORT"),
    (["--http", "127.0.0.1:8000", "--workers", "0"], "--workers must be at least 1"),
])
def test_refusals_are_one_line_and_nothing_is_started(args, says, capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("VOXEDGE_TOKEN", raising=False)
    assert main(["serve", "--bundle", str(tmp_path / "never-loaded"), *args]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"voxedge: error: {says}") and err.count("\n") == 1


def test_loopback_is_told_apart_from_everything_else():
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.8.9.10", "::1", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.20", "10.0.0.1"))
