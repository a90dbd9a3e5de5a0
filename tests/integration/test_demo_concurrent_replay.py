"""The quick demo's concurrent replay: every example of a burst answered over its own
connection, at the same time, and counted once in the demo's stats."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from driftloop.demo.scenario import send_concurrently
from driftloop.demo.traffic import Example, TrafficReplayer, TrafficStats

pytestmark = pytest.mark.integration


class _Predictor(BaseHTTPRequestHandler):
    """Answers v1 predict with the text's length after a pause, and takes feedback; counts
    the predict requests in flight at once."""

    in_flight = 0
    most_in_flight = 0
    feedback: list[dict] = []
    lock = threading.Lock()

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path.endswith(":predict"):
            cls = type(self)
            with cls.lock:
                cls.in_flight += 1
                cls.most_in_flight = max(cls.most_in_flight, cls.in_flight)
            time.sleep(0.3)
            with cls.lock:
                cls.in_flight -= 1
            (text,) = body["instances"]
            answer = {"predictions": [{"length": len(text)}], "model_version": "3"}
            answer["request_id"] = f"r-{text}"
        else:
            type(self).feedback.append({"path": self.path, **body})
            answer = {"ok": True}
        payload = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


def test_a_burst_goes_out_at_once_and_is_counted_once():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Predictor)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    examples = [Example(text, truth=len(text)) for text in ("a", "bb", "ccc", "dddd")]
    replayers = [TrafficReplayer(url, "m", feedback_fraction=1.0, seed=i) for i in range(4)]
    stats = TrafficStats(first_seen={"3": time.time() + 3600.0})
    try:
        with ThreadPoolExecutor(4) as pool:
            started = time.monotonic()
            send_concurrently(pool, replayers, examples, stats)
            elapsed = time.monotonic() - started
    finally:
        for replayer in replayers:
            replayer.__exit__(None, None, None)
        server.shutdown()
        server.server_close()
    assert _Predictor.most_in_flight == 4
    assert elapsed < 0.9  # four 0.3 s answers side by side, not one after another
    assert stats.predictions == stats.requests == stats.feedback == 4
    assert sorted(o["length"] for o in stats.outputs) == [1, 2, 3, 4]
    assert sorted(stats.truths) == [1, 2, 3, 4]
    assert stats.versions["3"] == 4 and stats.last_version == "3"
    assert stats.first_seen["3"] < time.time()  # the earliest sighting wins
    assert sorted(f["path"] for f in _Predictor.feedback) == [
        f"/v1/feedback/r-{text}" for text in ("a", "bb", "ccc", "dddd")
    ]
