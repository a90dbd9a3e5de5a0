"""Assembles KServe's ModelServer with driftloop's additions.

``serve(name, ...)`` loads ``models:/NAME@alias`` (or any model URI) into a
:class:`BlueprintModel` and runs ``kserve.ModelServer`` with:
REST v1 (``/v1/models/NAME:predict``), REST v2 (``/v2/models/NAME/infer``),
metadata/ready/live, ``/metrics``, the feedback API, and gRPC v2 on its own
port. The subclasses below exist only to hook in: KServe builds its REST and
gRPC servers inside ``ModelServer.start`` and its worker processes import the
app afresh, so the additions are installed where the app is created.
``docs=True`` (``driftloop serve --docs``) is KServe's ``enable_docs_url``:
Swagger UI on ``/docs`` and the typed ``/openapi.json`` (``serving.docs``).

Safe defaults (``serving.safety``): REST and gRPC bind ``settings.predictor_host``
(127.0.0.1 unless ``--host``/``DRIFTLOOP_PREDICTOR_HOST``; KServe itself always
binds 0.0.0.0/[::]); a non-loopback bind needs the API token or ``--insecure``;
bodies above ``max_body_bytes`` answer 413; client errors log one line; control
characters in log records are escaped; ``/v2/health/ready`` is ready only while
every registered model is (an ``unload`` makes it 503); with ``--workers`` > 1
repository load/unload answer 409 / ``FAILED_PRECONDITION`` (each process holds
its own repository, so a call would reach only one of them).
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent import futures

from grpc import aio
from kserve import ModelServer
from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
from kserve.errors import ModelNotReady
from kserve.model_server import args as kserve_args
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc
from kserve.protocol.grpc.interceptors import LoggingInterceptor
from kserve.protocol.grpc.server import GRPCServer
from kserve.protocol.grpc.servicer import InferenceServicer
from kserve.protocol.rest.multiprocess.server import RESTServerMultiProcess, RESTServerProcess
from kserve.protocol.rest.server import RESTServer
from timing_asgi import TimingMiddleware

from driftloop.serving import metrics, rest, runtime, safety
from driftloop.serving.auth import GrpcAuthInterceptor
from driftloop.serving.loader import model_uri_for
from driftloop.serving.model import BlueprintModel
from driftloop.serving.repository import (
    ReloadingModelRepository,
    SingleProcessRepositoryExtension,
)
from driftloop.settings import Settings, get_settings

log = logging.getLogger(__name__)


class DriftloopDataPlane(DataPlane):
    """KServe's data plane, ready only while every registered model is ready.

    KServe's ``ready()`` is always True (so an unloaded model left the server
    "ready"), and its ``get_model`` reloads a not-ready model inline on the event
    loop; an unloaded model stays unloaded until a repository ``load``.
    """

    async def ready(self) -> bool:
        registry = self._model_registry
        if hasattr(registry, "all_ready"):
            return await registry.all_ready()
        return await super().ready()

    async def get_model(self, name: str):  # noqa: ANN201
        registry = self._model_registry
        if getattr(registry, "is_unloaded", lambda _: False)(name):
            raise ModelNotReady(name)
        return await super().get_model(name)


class DriftloopRESTServer(RESTServer):
    def __init__(
        self,
        *args,
        settings: Settings,
        docs: bool = False,
        host: str | None = None,
        latency_logging: bool = False,
        access_log: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.settings = settings
        self.docs = docs
        self.latency_logging = latency_logging
        # KServe hard-codes 0.0.0.0; the multi-process server binds this config's socket too
        self.config.host = host or settings.predictor_host
        self.access_log = access_log

    def _register_endpoints(self, app) -> None:  # noqa: ANN001
        # runs in every REST process: the log hygiene and the model label allow-list
        safety.install_log_escaping()
        if not self.access_log:
            # uvicorn's access log writes a formatted, escaped line per request: about a tenth
            # of the event loop's CPU under batched load (py-spy, 32 conns). Every request is
            # counted in driftloop_requests_total and every prediction stored with its id, so
            # the line is off unless asked for (MLServer logs it only in debug mode). uvicorn
            # logs when the logger has handlers (KServe's logging config gives it one), so
            # the level is what turns it off.
            logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
        metrics.register_models(self.dataplane.model_registry.get_models())
        # ours first: the first matching route wins, so these replace KServe's
        rest.install(app, self.dataplane, self.settings, docs=self.docs)
        super()._register_endpoints(app)

    def _add_middlewares(self, app) -> None:  # noqa: ANN001
        super()._add_middlewares(app)
        if not self.latency_logging:
            # KServe's TimingMiddleware only logs two kserve.trace lines per request (wall
            # and CPU time: two getrusage calls): ~a third of the event loop's CPU under
            # batched load. driftloop_request_latency_seconds measures the same; it stays
            # with --enable_latency_logging.
            app.user_middleware[:] = [
                m for m in app.user_middleware if m.cls is not TimingMiddleware
            ]
        # inside auth and request metrics (added next, outermost): 413s are counted
        app.add_middleware(safety.BodySizeLimitMiddleware, max_bytes=self.settings.max_body_bytes)
        rest.add_middlewares(app, self.settings)

    def _add_exception_handlers(self, app) -> None:  # noqa: ANN001
        super()._add_exception_handlers(app)
        # KServe logs every InvalidInput/ModelNotFound/... with a full traceback
        for kind, handler in safety.client_error_handlers().items():
            app.add_exception_handler(kind, handler)


# KServe pings each worker with a 5 s timeout and kills the ones that miss it, but a
# worker cannot answer before it has imported KServe, MLflow and sklearn and unpickled
# the model -- on a busy machine that takes longer, and the workers die in a loop.
WORKER_START_GRACE_S = 120.0


class DriftloopRESTServerMultiProcess(RESTServerMultiProcess):
    def __init__(
        self,
        app: str,
        data_plane,  # noqa: ANN001
        extension,  # noqa: ANN001
        http_port: int,
        *,
        settings: Settings,
        docs: bool = False,
        host: str | None = None,
        latency_logging: bool = False,
        access_log: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(app, data_plane, extension, http_port, **kwargs)
        self._rest_server = DriftloopRESTServer(
            app,
            data_plane,
            extension,
            http_port,
            kwargs.get("access_log_format"),
            kwargs.get("workers", 1),
            kwargs.get("grace_period", 30),
            kwargs.get("event_loop", "auto"),
            kwargs.get("timeout_keep_alive", 65),
            settings=settings,
            docs=docs,
            host=host,
            latency_logging=latency_logging,
            access_log=access_log,
        )
        self._born: dict[int | None, float] = {}

    def init_processes(self, sockets) -> None:  # noqa: ANN001
        super().init_processes(sockets)
        for process in self._processes:
            self._born[process.pid] = time.monotonic()

    async def keep_subprocess_alive(self, sockets) -> None:  # noqa: ANN001
        if self.should_exit.is_set():
            return
        for index, process in enumerate(self._processes):
            starting = time.monotonic() - self._born.get(process.pid, 0.0) < WORKER_START_GRACE_S
            if process._process.is_alive() and (starting or process.is_alive()):
                continue
            process.kill()
            await process.wait_for_termination()
            if self.should_exit.is_set():
                return
            log.warning("REST worker %s died or hung; starting a new one", process.pid)
            process = RESTServerProcess(sockets, self._rest_server.run)
            process.start()
            self._born[process.pid] = time.monotonic()
            self._processes[index] = process


class DriftloopGRPCServer(GRPCServer):
    """KServe's gRPC server plus the auth interceptor."""

    def __init__(self, *args, settings: Settings, host: str | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.settings = settings
        self.host = host or settings.predictor_host

    async def start(self, max_workers: int) -> None:
        servicer = InferenceServicer(self._data_plane, self._model_repository_extension)
        self._server = aio.server(
            futures.ThreadPoolExecutor(max_workers=max_workers),
            interceptors=(
                GrpcAuthInterceptor(self.settings.api_token),
                LoggingInterceptor(),
                safety.GrpcClientErrorInterceptor(),
            ),
            options=[
                ("grpc.max_send_message_length", self._kwargs.get("grpc_max_send_message_length")),
                (
                    "grpc.max_receive_message_length",
                    self._kwargs.get("grpc_max_receive_message_length"),
                ),
            ],
        )
        grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(servicer, self._server)
        self._server.add_insecure_port(safety.grpc_address(self.host, self._port))
        await self._server.start()
        await self._server.wait_for_termination()


class DriftloopModelServer(ModelServer):
    def __init__(
        self, settings: Settings, host: str | None = None, access_log: bool = False, **kwargs
    ) -> None:
        kwargs.setdefault("registered_models", ReloadingModelRepository())
        kwargs.setdefault("enable_latency_logging", False)
        super().__init__(**kwargs)
        self.settings = settings
        self.host = host or settings.predictor_host
        self.access_log = access_log
        self.dataplane = DriftloopDataPlane(model_registry=self.registered_models)
        # pickled into every spawned REST worker with the server object, as KServe's is
        self.model_repository_extension = SingleProcessRepositoryExtension(
            self.registered_models, workers=self.workers
        )

    def start(self, models: list[BlueprintModel]) -> None:
        self._register_and_check_atleast_one_model_is_ready(models)
        # Open the store (and run its migrations) before any worker starts, so
        # workers never race each other creating tables.
        runtime.install(self.settings).start(models)
        runtime.mark_server_process()
        common = dict(
            access_log_format=self.access_log_format,
            workers=self.workers,
            grace_period=self.grace_period,
            event_loop=self.event_loop,
            timeout_keep_alive=self.timeout_keep_alive,
            latency_logging=self.enable_latency_logging,
            access_log=self.access_log,
        )
        if self.workers > 1:
            self._rest_multiprocess_server = DriftloopRESTServerMultiProcess(
                FASTAPI_APP_IMPORT_STRING,
                self.dataplane,
                self.model_repository_extension,
                self.http_port,
                settings=self.settings,
                docs=self.enable_docs_url,
                host=self.host,
                log_config_file=kserve_args.log_config_file,
                **common,
            )
            self.servers.append(self._rest_multiprocess_server.start())
        else:
            self._rest_server = DriftloopRESTServer(
                FASTAPI_APP_IMPORT_STRING,
                self.dataplane,
                self.model_repository_extension,
                self.http_port,
                settings=self.settings,
                docs=self.enable_docs_url,
                host=self.host,
                **common,
            )
            self.servers.append(self._rest_server.start())
        if self.enable_grpc:
            self._grpc_server = DriftloopGRPCServer(
                self.grpc_port,
                self.dataplane,
                self.model_repository_extension,
                kwargs=vars(kserve_args),
                grace_period=self.grace_period,
                settings=self.settings,
                host=self.host,
            )
            self.servers.append(self._grpc_server.start(self.max_threads))
        self.setup_event_loop()
        self.register_signal_handler()
        try:
            asyncio.run(self._serve())
        finally:
            # every server has stopped: drain the store queue, stop the pollers
            runtime.close_current()


def build_model(
    name: str,
    *,
    alias: str = "champion",
    model_uri: str | None = None,
    settings: Settings | None = None,
) -> BlueprintModel:
    """A loaded model for ``name`` (raises ``loader.ModelLoadError`` when it cannot load)."""
    settings = settings or get_settings()
    model = BlueprintModel(name, model_uri_for(name, alias, model_uri), settings)
    model.load()
    return model


def serve(
    name: str,
    *,
    alias: str = "champion",
    model_uri: str | None = None,
    http_port: int = 8080,
    grpc_port: int = 8081,
    workers: int = 1,
    enable_grpc: bool = True,
    docs: bool = False,
    host: str | None = None,
    insecure: bool | None = None,
    settings: Settings | None = None,
    access_log: bool = False,
) -> None:
    """Load the model and serve it until SIGINT/SIGTERM (blocking).

    ``docs`` serves Swagger UI on ``/docs`` and the typed ``/openapi.json``; off by
    default, as a production predictor should not advertise its API. ``host``
    (default ``settings.predictor_host``, 127.0.0.1) is where REST and gRPC bind;
    a non-loopback one raises ``safety.UnsafeBindError`` without the API token
    unless ``insecure`` (default ``settings.insecure``). ``access_log`` writes uvicorn's
    line per request (off: requests are counted in ``driftloop_requests_total``).
    """
    settings = settings or get_settings()
    host = host or settings.predictor_host
    safety.check_bind(host, settings.api_token, settings.insecure if insecure is None else insecure)
    safety.install_log_escaping()
    model = build_model(name, alias=alias, model_uri=model_uri, settings=settings)
    policy = model.batch_policy
    if policy.enabled:
        log.info(
            "adaptive batching: up to %d instances per model call, %g ms longest wait",
            policy.max_batch_size,
            policy.max_latency_ms,
        )
    else:
        log.info("adaptive batching off (max batch size 1): one model call per request")
    server = DriftloopModelServer(
        settings,
        host=host,
        http_port=http_port,
        grpc_port=grpc_port,
        workers=workers,
        enable_grpc=enable_grpc,
        enable_docs_url=docs,
        access_log=access_log,
    )
    server.start([model])
