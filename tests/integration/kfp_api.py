"""A loopback HTTP server answering the Kubeflow Pipelines v2beta1 REST paths.

``kfp.Client`` is used unmodified against it, so what driftloop sends over the
wire (experiment, run name, inline pipeline spec, parameters, caching) is what
a real KFP API server would receive. Only the paths the client calls for
healthz, experiments, runs and pipeline uploads are answered; anything else is
a 404, which makes a new, unexpected call fail the test instead of passing
silently.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

PREFIX = "/apis/v2beta1"


@dataclass
class KfpApiState:
    experiments: dict[str, dict] = field(default_factory=dict)
    runs: dict[str, dict] = field(default_factory=dict)
    pipelines: dict[str, dict] = field(default_factory=dict)
    uploads: list[dict] = field(default_factory=list)
    # run id -> states get_run returns in turn (the last one repeats)
    run_states: dict[str, list[str]] = field(default_factory=dict)
    default_states: tuple[str, ...] = ("RUNNING", "SUCCEEDED")
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_state(self, run_id: str) -> str:
        with self.lock:
            states = self.run_states.setdefault(run_id, list(self.default_states))
            return states.pop(0) if len(states) > 1 else states[0]


def _display_name_filter(query: dict[str, list[str]]) -> str | None:
    raw = query.get("filter", [None])[0]
    if not raw:
        return None
    for predicate in json.loads(raw).get("predicates", []):
        if predicate.get("key") == "display_name":
            return predicate.get("string_value") or predicate.get("stringValue")
    return None


def _listing(key: str, found: list[dict]) -> dict:
    # KFP answers an empty list as an empty object, and kfp.Client relies on it
    return {key: found, "total_size": len(found)} if found else {}


def _handler(state: KfpApiState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep pytest output clean
            pass

        def _reply(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("content-length", 0)))

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            url = urlparse(self.path)
            query = parse_qs(url.query)
            if url.path == f"{PREFIX}/healthz":
                return self._reply(200, {"multi_user": False})
            if url.path == f"{PREFIX}/experiments":
                name = _display_name_filter(query)
                found = [e for e in state.experiments.values() if e["display_name"] == name]
                return self._reply(
                    200, {"experiments": found, "total_size": len(found)} if found else {}
                )
            if url.path.startswith(f"{PREFIX}/runs/"):
                run_id = url.path.rsplit("/", 1)[-1]
                if run_id not in state.runs:
                    return self._reply(404, {"error": f"run {run_id} not found", "code": 5})
                return self._reply(200, {**state.runs[run_id], "state": state.next_state(run_id)})
            if url.path == f"{PREFIX}/pipelines":
                name = _display_name_filter(query)
                found = [p for p in state.pipelines.values() if p["display_name"] == name]
                return self._reply(
                    200, {"pipelines": found, "total_size": len(found)} if found else {}
                )
            return self._reply(404, {"error": f"no route {url.path}", "code": 5})

        def do_POST(self) -> None:  # noqa: N802
            url = urlparse(self.path)
            if url.path == f"{PREFIX}/experiments":
                body = json.loads(self._body())
                experiment = {**body, "experiment_id": str(uuid.uuid4())}
                state.experiments[experiment["experiment_id"]] = experiment
                return self._reply(200, experiment)
            if url.path == f"{PREFIX}/runs":
                body = json.loads(self._body())
                run = {**body, "run_id": str(uuid.uuid4()), "state": "PENDING"}
                state.runs[run["run_id"]] = run
                return self._reply(200, run)
            if url.path in (f"{PREFIX}/pipelines/upload", f"{PREFIX}/pipelines/upload_version"):
                query = parse_qs(url.query)
                self._body()  # the multipart package; its arrival is what is recorded
                state.uploads.append({"path": url.path, "query": query})
                if url.path.endswith("upload"):
                    name = (query.get("name") or query.get("display_name") or [""])[0]
                    pipeline = {"pipeline_id": str(uuid.uuid4()), "display_name": name}
                    state.pipelines[pipeline["pipeline_id"]] = pipeline
                    return self._reply(200, pipeline)
                version = {
                    "pipeline_id": query.get("pipelineid", [""])[0],
                    "pipeline_version_id": str(uuid.uuid4()),
                    "display_name": query.get("name", [""])[0],
                }
                return self._reply(200, version)
            return self._reply(404, {"error": f"no route {url.path}", "code": 5})

    return Handler


class KfpApiServer:
    def __init__(self) -> None:
        self.state = KfpApiState()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.state))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> KfpApiServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
