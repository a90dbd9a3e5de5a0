"""``driftloop serve`` and ``driftloop predict``."""

from __future__ import annotations

import json

import click

from driftloop.cli import UserError


@click.command()
@click.argument("name")
@click.option("--alias", default="champion", show_default=True, help="Registry alias to serve.")
@click.option(
    "--model-uri",
    default=None,
    help="Serve this model URI instead of NAME@alias (default: env DRIFTLOOP_MODEL_URI).",
)
@click.option(
    "--host",
    default=None,
    help="Address REST and gRPC bind (default: env DRIFTLOOP_PREDICTOR_HOST, else 127.0.0.1). "
    "A non-loopback address (0.0.0.0 in a pod) needs DRIFTLOOP_API_TOKEN, or --insecure.",
)
@click.option(
    "--insecure",
    is_flag=True,
    help="Allow a non-loopback --host without DRIFTLOOP_API_TOKEN: predict, feedback and "
    "the model repository are then open to anyone who reaches the port (also "
    "DRIFTLOOP_INSECURE=1).",
)
@click.option("--http-port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--grpc-port", default=8081, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option("--no-grpc", is_flag=True, help="Serve REST only.")
@click.option(
    "--max-batch-size",
    default=None,
    type=click.IntRange(1, 10_000),
    help="Adaptive batching: concurrent requests share one model call of at most this many "
    "instances; 1 turns batching off (default: env DRIFTLOOP_MAX_BATCH_SIZE, else 32).",
)
@click.option(
    "--max-latency-ms",
    default=None,
    type=click.FloatRange(0.0, 60_000.0, min_open=True),
    help="Adaptive batching: the longest a request waits for others to join its model call "
    "(default: env DRIFTLOOP_MAX_LATENCY_MS, else 5).",
)
@click.option(
    "--docs",
    is_flag=True,
    help="Serve Swagger UI on /docs and the typed, example-rich OpenAPI document on "
    "/openapi.json. Off by default: a production predictor should not advertise its API.",
)
@click.option(
    "--access-log",
    is_flag=True,
    help="Write a line per request (uvicorn's access log). Off by default: it costs ~7 %% of "
    "the event loop at high load, and requests are counted in driftloop_requests_total.",
)
def serve(
    name,
    alias,
    model_uri,
    host,
    insecure,
    http_port,
    grpc_port,
    workers,
    no_grpc,
    max_batch_size,
    max_latency_ms,
    docs,
    access_log,
) -> None:  # noqa: ANN001
    """Serve model NAME (models:/NAME@champion) over REST v1/v2 and gRPC, with feedback."""
    from driftloop.cli.threads import default_to_one_math_thread

    default_to_one_math_thread()  # before the imports below load numpy and the model's libraries
    from driftloop.serving.loader import ModelLoadError
    from driftloop.serving.safety import UnsafeBindError, check_bind
    from driftloop.serving.server import serve as run_server
    from driftloop.settings import get_settings

    if http_port == grpc_port and not no_grpc:
        raise UserError("--http-port and --grpc-port must differ")
    settings = get_settings()
    batching = {"max_batch_size": max_batch_size, "max_latency_ms": max_latency_ms}
    settings = settings.model_copy(update={k: v for k, v in batching.items() if v is not None})
    host = host or settings.predictor_host
    insecure = insecure or settings.insecure
    try:  # before loading the model: a refused bind fails fast, in one line
        check_bind(host, settings.api_token, insecure)
    except UnsafeBindError as exc:
        raise UserError(str(exc)) from None
    source = "--model-uri/--alias"
    if model_uri is None:
        model_uri = _model_uri_from_settings(get_settings().model_uri)
        source = "DRIFTLOOP_MODEL_URI" if model_uri else source
    try:
        run_server(
            name,
            alias=alias,
            model_uri=model_uri,
            http_port=http_port,
            grpc_port=grpc_port,
            workers=workers,
            enable_grpc=not no_grpc,
            docs=docs,
            host=host,
            insecure=insecure,
            settings=settings,
            access_log=access_log,
        )
    except ModelLoadError as exc:
        raise UserError(f"{source}: {exc}") from exc


def _model_uri_from_settings(configured: str | None) -> str | None:
    """DRIFTLOOP_MODEL_URI, unless an explicit --alias asks for something else."""
    if not configured:
        return None
    alias_source = click.get_current_context().get_parameter_source("alias")
    if alias_source == click.core.ParameterSource.COMMANDLINE:
        raise UserError(
            f"--alias and DRIFTLOOP_MODEL_URI={configured!r} both choose the model to serve; "
            "pass --model-uri, or unset DRIFTLOOP_MODEL_URI"
        )
    return configured


def parse_instance(text: str) -> object:
    """An instance from the command line: JSON when it reads as an object or list, else text."""
    if text.lstrip().startswith(("{", "[")):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"INSTANCE {text[:40]!r} looks like JSON but is not: {exc}") from None
    return text


def _shown(value: object, width: int = 50) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= width else text[: width - 3] + "..."


@click.command()
@click.argument("name")
@click.argument("instances", nargs=-1, required=True, metavar="INSTANCE...")
@click.option("--url", default="http://127.0.0.1:8080", show_default=True)
@click.option("--protocol", type=click.Choice(["v1", "v2"]), default="v2", show_default=True)
@click.option(
    "--token",
    envvar="DRIFTLOOP_API_TOKEN",
    default=None,
    help="API token (env DRIFTLOOP_API_TOKEN).",
)
def predict(name, instances, url, protocol, token) -> None:  # noqa: ANN001
    """Ask the predictor serving NAME at --url about each INSTANCE: a text, or a JSON
    object of column values ('{"bill_length_mm": 39.1, "island": "Dream"}')."""
    from rich.console import Console
    from rich.table import Table

    from driftloop.serving.client import PredictorClient, PredictorError

    parsed = [parse_instance(text) for text in instances]
    try:
        with PredictorClient(url, token=token) as client:
            predictions = client.predict(name, parsed, protocol=protocol)
    except PredictorError as exc:
        raise UserError(f"--url {url}: {exc}") from exc
    fields = list(dict.fromkeys(key for p in predictions for key in p.output))
    table = Table(title=f"{name} (version {predictions[0].model_version})")
    for column in ("instance", *fields, "request id"):
        table.add_column(column)
    for p in predictions:
        table.add_row(
            _shown(p.instance), *(_shown(p.output.get(f, "")) for f in fields), p.request_id
        )
    Console().print(table)
