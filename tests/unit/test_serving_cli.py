"""``driftloop serve`` / ``driftloop predict``: user errors are one line, exit status 2."""

from __future__ import annotations

import pytest

from driftloop.cli import main
from tests.conftest import free_port, free_ports


def test_predict_against_nothing_is_a_one_line_error(capsys):
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["predict", "sentiment", "hello", "--url", url]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("driftloop: error: --url") and "\n" not in err


def test_serve_rejects_equal_ports(capsys):
    assert main(["serve", "m", "--http-port", "9000", "--grpc-port", "9000"]) == 2
    assert "--grpc-port must differ" in capsys.readouterr().err


def test_serve_takes_the_access_log_flag(capsys):
    # parsed (not "no such option"): the ports check after parsing is what refuses
    assert main(["serve", "m", "--access-log", "--http-port", "9000", "--grpc-port", "9000"]) == 2
    assert "--grpc-port must differ" in capsys.readouterr().err


@pytest.mark.slow  # imports MLflow and creates its database
def test_serve_unknown_model_is_a_one_line_error(home, capsys):
    ports = free_ports(2)
    code = main(["serve", "nosuch", "--http-port", str(ports[0]), "--grpc-port", str(ports[1])])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith(
        "driftloop: error: --model-uri/--alias: cannot resolve models:/nosuch@champion"
    )
