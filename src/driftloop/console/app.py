"""The console's pages: FastAPI routes rendering Jinja2 templates, one route per page or action."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from driftloop.console import auth, automl, plots, predict, runs
from driftloop.console.config import ConsoleConfig
from driftloop.console.history import model_history
from driftloop.console.registry_view import RegistryView, decision_events
from driftloop.console.store_view import recent_predictions

HERE = Path(__file__).parent
# What a page shows when a source is down: the page still renders, naming the source.
SOURCE_ERRORS = (httpx.HTTPError, OSError, ValueError, RuntimeError)


def _error_text(what: str, exc: BaseException) -> str:
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"{what}: {type(exc).__name__}: {first[:200]}"


def create_app(config: ConsoleConfig, studio_env: dict[str, str] | None = None) -> FastAPI:
    studio = automl.Studio(config.home, env=studio_env)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        studio.stop_all()

    app = FastAPI(title="driftloop console", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    templates = Jinja2Templates(directory=HERE / "templates")
    registry = RegistryView(config.tracking_uri)

    def page(
        request: Request, template: str, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        context.setdefault("config", config)
        context.setdefault("login_required", bool(config.access_token))
        return templates.TemplateResponse(request, template, context, status_code=status_code)

    def login_page(
        request: Request, status_code: int, error: str | None, next_path: str
    ) -> HTMLResponse:
        return page(
            request,
            "login.html",
            status_code,
            error=error,
            next_path=auth.safe_next(next_path),
            active="login",
        )

    app.middleware("http")(auth.middleware(config.access_token))

    def automl_view(
        request: Request,
        status_code: int = 200,
        *,
        upload: str | None = None,
        columns: list | None = None,
        error: str | None = None,
        **extra: Any,
    ) -> HTMLResponse:
        return page(
            request,
            "automl.html",
            status_code,
            jobs=studio.list(),
            upload=upload,
            columns=columns or [],
            error=error,
            choices=_choices(),
            active="automl",
            **extra,
        )

    @app.get("/favicon.ico")
    def favicon() -> Response:
        return Response(status_code=204)  # pages declare none; browsers still ask

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/")
    def home() -> RedirectResponse:
        return RedirectResponse("/models", status_code=303)

    @app.get("/login", response_class=HTMLResponse, response_model=None)
    def login_form(request: Request, next: str = "/models") -> HTMLResponse | RedirectResponse:
        if not config.access_token or auth.is_authenticated(config.access_token, request):
            return RedirectResponse(auth.safe_next(next), status_code=303)
        return login_page(request, 200, None, next)

    @app.post("/login", response_class=HTMLResponse, response_model=None)
    def login(
        request: Request, token: str = Form(""), next: str = Form("/models")
    ) -> HTMLResponse | RedirectResponse:
        if not config.access_token:
            return RedirectResponse(auth.safe_next(next), status_code=303)
        if not auth.is_token(config.access_token, token):
            return login_page(request, 401, "token: not the console's token", next)
        answer = RedirectResponse(auth.safe_next(next), status_code=303)
        answer.set_cookie(
            auth.SESSION_COOKIE,
            auth.session_value(config.access_token),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return answer

    @app.post("/logout")
    def logout() -> RedirectResponse:
        answer = RedirectResponse("/login", status_code=303)
        answer.delete_cookie(auth.SESSION_COOKIE)
        return answer

    @app.get("/models", response_class=HTMLResponse)
    async def models(request: Request) -> HTMLResponse:
        try:
            rows, error = await run_in_threadpool(registry.models), None
        except SOURCE_ERRORS as exc:
            rows, error = [], _error_text(f"registry {config.tracking_uri}", exc)
        return page(request, "models.html", models=rows, error=error, active="models")

    @app.get("/models/{name}", response_class=HTMLResponse)
    async def model(request: Request, name: str, hours: float = 1.0) -> HTMLResponse:
        errors: list[str] = []
        try:
            aliases, versions = await run_in_threadpool(registry.versions, name)
        except LookupError as exc:
            return page(request, "error.html", 404, message=str(exc), active="models")
        except SOURCE_ERRORS as exc:
            aliases, versions = {}, []
            errors.append(_error_text("registry", exc))
        seconds = min(max(hours, 0.05), 24 * 14) * 3600
        history, records, recent = await asyncio.gather(
            run_in_threadpool(model_history, config, name, seconds),
            run_in_threadpool(runs.trigger_records, config),
            run_in_threadpool(_recent, config, name, errors),
        )
        records = runs.for_model(records, name)
        if records["error"]:
            errors.append(records["error"])
        if history.note:
            errors.append(history.note)
        events = decision_events(versions) + runs.run_events(records)
        champion = next((v for v in versions if "champion" in v.aliases), None)
        metric = champion.metric if champion else None
        drift_svg, score_svg = await asyncio.gather(
            run_in_threadpool(plots.drift_plot, history, events, name),
            run_in_threadpool(plots.score_plot, history, events, name, metric),
        )
        return page(
            request,
            "model.html",
            name=name,
            aliases=aliases,
            versions=versions,
            history=history,
            records=records,
            recent=recent,
            drift_svg=drift_svg,
            score_svg=score_svg,
            errors=errors,
            champion=champion,
            hours=hours,
            active="models",
        )

    @app.get("/predict", response_class=HTMLResponse)
    async def predict_form(request: Request, model: str | None = None) -> HTMLResponse:
        served, fields, error = await run_in_threadpool(_form, config, model)
        chosen = model or (served[0] if served else None)
        return page(
            request,
            "predict.html",
            served=served,
            model=chosen,
            fields=fields,
            values={},
            result=None,
            error=error,
            active="predict",
        )

    @app.post("/predict", response_class=HTMLResponse)
    async def predict_submit(request: Request) -> HTMLResponse:
        submitted = await request.form(max_part_size=predict.MAX_FILE_BYTES + 1)
        form = {k: v for k, v in submitted.items() if isinstance(v, str)}
        model = form.pop("model", "")
        served, fields, error = await run_in_threadpool(_form, config, model)
        result = None
        status = 200
        if error is None:
            try:
                uploads = await _uploads(submitted, fields)
                instance = predict.instance_from_form(fields, form, uploads)
                result = await run_in_threadpool(predict.predict, config, model, instance)
                result["images"] = {
                    name: upload.data_url for name, upload in uploads.items() if upload.data_url
                }
            except predict.FormError as exc:
                error, status = str(exc), 422
            except predict.PredictorError as exc:
                error, status = str(exc), 502
        return page(
            request,
            "predict.html",
            status,
            served=served,
            model=model,
            fields=fields,
            values=form,
            result=result,
            error=error,
            active="predict",
        )

    @app.post("/api/feedback/{request_id}")
    async def feedback(request_id: str, request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"detail": "body: not JSON"}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"detail": "body: a JSON object is needed"}, status_code=400)
        try:
            answer = await run_in_threadpool(predict.send_feedback, config, request_id, body)
        except predict.FormError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=422)
        except predict.PredictorError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=502)
        return JSONResponse(answer)

    @app.get("/runs", response_class=HTMLResponse)
    async def runs_page(request: Request) -> HTMLResponse:
        from driftloop.settings import Settings

        records = await run_in_threadpool(runs.trigger_records, config)
        pipeline_root = Settings(home=config.home).resolved_pipeline_root
        local = await run_in_threadpool(runs.local_pipeline_runs, pipeline_root)
        return page(
            request, "runs.html", records=records, local=local, jobs=studio.list(), active="runs"
        )

    @app.get("/automl", response_class=HTMLResponse)
    async def automl_page(request: Request) -> HTMLResponse:
        return automl_view(request)

    @app.post("/automl/upload", response_class=HTMLResponse)
    async def automl_upload(request: Request, file: UploadFile = File(...)) -> HTMLResponse:
        content = await file.read(automl.MAX_UPLOAD_BYTES + 1)
        try:
            upload_id, columns = await run_in_threadpool(
                studio.save_upload, file.filename or "upload.csv", content
            )
        except automl.JobError as exc:
            return automl_view(request, 422, error=str(exc))
        return automl_view(request, upload=upload_id, columns=columns, filename=file.filename)

    @app.post("/automl/launch", response_model=None)
    async def automl_launch(
        request: Request,
        upload: str = Form(...),
        target: str = Form(""),
        task: str = Form("auto"),
        preset: str = Form("fast"),
        sampler: str = Form("tpe"),
        validation: str = Form("auto"),
        model_name: str = Form("automl"),
    ) -> HTMLResponse | RedirectResponse:
        form = {
            "target": target,
            "task": task,
            "preset": preset,
            "sampler": sampler,
            "validation": validation,
            "model_name": model_name,
        }
        try:
            job = await run_in_threadpool(studio.launch, upload, form)
        except automl.JobError as exc:
            return automl_view(request, 422, error=str(exc))
        return RedirectResponse(f"/automl/jobs/{job.id}", status_code=303)

    @app.get("/automl/jobs/{job_id}", response_class=HTMLResponse)
    async def automl_job(request: Request, job_id: str) -> HTMLResponse:
        job = studio.get(job_id)
        if job is None:
            return page(request, "error.html", 404, message=f"no job {job_id!r}", active="automl")
        summary = job.summary() if job.state != "running" else None
        scores = automl.candidate_scores(summary) if summary else {}
        svg = (
            await run_in_threadpool(
                plots.candidates_plot,
                scores,
                summary["primary_metric"],
                summary.get("best_candidate"),
            )
            if scores
            else None
        )
        return page(
            request,
            "automl_job.html",
            job=job,
            summary=summary,
            scores=scores,
            candidates_svg=svg,
            active="automl",
        )

    @app.get("/api/automl/jobs/{job_id}")
    def automl_job_json(job_id: str) -> JSONResponse:
        job = studio.get(job_id)
        if job is None:
            return JSONResponse({"detail": f"job: no job {job_id!r}"}, status_code=404)
        return JSONResponse({**job.to_json(), "log": job.log_tail(15)})

    app.state.studio = studio
    return app


async def _uploads(submitted, fields: list[predict.Field]) -> dict[str, predict.Upload]:  # noqa: ANN001 - Starlette FormData
    """The files chosen in the form, by field name (an input left empty sends no file)."""
    uploads = {}
    for field in fields:
        item = submitted.get(field.file_input)
        if isinstance(item, str) or item is None or not item.filename:
            continue
        content = await item.read(predict.MAX_FILE_BYTES + 1)
        uploads[field.name] = predict.Upload(
            item.filename, item.content_type or "application/octet-stream", content
        )
    return uploads


def _recent(config: ConsoleConfig, name: str, errors: list[str]) -> list[dict]:
    try:
        return recent_predictions(config.store_url, name)
    except Exception as exc:  # the store may be down or not created yet: the page still renders
        errors.append(_error_text("prediction store", exc))
        return []


def _form(config: ConsoleConfig, model: str | None):
    """(models the predictor serves, the chosen model's fields, an error)."""
    try:
        listed = predict.served_models(config)
        chosen = model or (listed[0] if listed else None)
        if chosen is None:
            return [], [], f"the predictor at {config.predictor_url} serves no model"
        if chosen not in listed:
            return listed, [], f"model: the predictor does not serve {chosen!r}"
        return listed, predict.form_fields(config, chosen), None
    except predict.PredictorError as exc:
        return [], [], str(exc)


def _choices() -> dict[str, tuple[str, ...]]:
    return {
        "task": automl.TASKS,
        "preset": automl.PRESETS,
        "sampler": automl.SAMPLERS,
        "validation": automl.VALIDATIONS,
    }
