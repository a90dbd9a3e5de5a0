"""Every ``curl`` command in docs/serving.md, run as written (the real curl binary)
against a real predictor on loopback: each answers 2xx.

Only two things are substituted: the host (``localhost:8080`` -> the test's port)
and the example request ids, which become ids of predictions this predictor made
(the docs' v2 example id <- a v2 predict, the v1 example id <- a v1 predict).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest_serving import register_text_model, running_predictor

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DOC = Path(__file__).resolve().parents[2] / "docs" / "serving.md"
V2_EXAMPLE_ID = "8a2e0ee3edbe4534b44d154a9d1ed2c2"
V1_EXAMPLE_ID = "24e58b60eedc4f699e612ea0f09d6599"
STATUS_MARK = "\n@@status="


def curl_commands(markdown: str) -> list[str]:
    """The curl commands of the ```bash blocks, each joined across its continuation
    lines and its multi-line single-quoted arguments."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", markdown, flags=re.S):
        current = ""
        for line in block.splitlines():
            if not current and not line.startswith("curl "):
                continue  # comments, other commands
            current += line + "\n"
            if current.count("'") % 2 == 0 and not line.endswith("\\"):
                commands.append(current.strip())
                current = ""
    return commands


def run_curl(command: str, url: str) -> tuple[int, str]:
    command = command.replace("localhost:8080", url)
    done = subprocess.run(
        ["bash", "-c", f"{command} -w '{STATUS_MARK}%{{http_code}}'"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, (command, done.stderr)
    body, _, status = done.stdout.rpartition(STATUS_MARK)
    return int(status), body


def test_curl_commands_are_found():
    commands = curl_commands(DOC.read_text())
    assert len(commands) >= 5
    assert any(":predict" in c for c in commands) and any("/v1/feedback" in c for c in commands)


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs the curl binary")
def test_docs_curl_examples_answer_2xx(tmp_path):
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    register_text_model(tracking, "sentiment")
    env = {
        "DRIFTLOOP_HOME": str(tmp_path),
        "MLFLOW_TRACKING_URI": tracking,
        "DRIFTLOOP_API_TOKEN": "",  # the docs' examples: no token (the default)
        "DRIFTLOOP_RELOAD_INTERVAL_S": "0",
    }
    commands = curl_commands(DOC.read_text())
    predicts = [c for c in commands if "/v1/feedback" not in c]
    feedbacks = [c for c in commands if "/v1/feedback" in c]
    with running_predictor("sentiment", tmp_path, env=env) as predictor:
        url = f"127.0.0.1:{predictor.http_port}"
        ids: dict[str, str] = {}
        for command in predicts:
            status, body = run_curl(command, url)
            assert 200 <= status < 300, (command, status, body)
            if "explain" in command:
                continue  # an explanation is no prediction: feedback cannot refer to it
            if "/v2/" in command:
                ids[V2_EXAMPLE_ID] = re.search(r'"id":"([0-9a-f]{32})"', body).group(1)
            else:
                ids[V1_EXAMPLE_ID] = re.search(r'"request_id":"([0-9a-f]{32})"', body).group(1)
        assert set(ids) == {V1_EXAMPLE_ID, V2_EXAMPLE_ID}
        for command in feedbacks:
            for example, real in ids.items():
                command = command.replace(example, real)
            status, body = run_curl(command, url)
            assert 200 <= status < 300, (command, status, body)
