"""``driftloop train BLUEPRINT``: run the training pipeline here, through kfp.local.

The progress lines and the closing summary come from the pipeline itself: task
start/end events parsed from kfp.local's log, and the tasks' own outputs (the
train step's candidate scores, the evaluate step's test metrics, the gate's
decision), plus the registry's aliases once the run is over.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click

from driftloop.cli import UserError

# One user-facing name per pipeline task, in the order they run.
STEP_TITLES = {
    "ingest": "ingest data",
    "validate": "validate rows",
    "split": "split train/val/test",
    "train": "train candidates",
    "evaluate": "evaluate on test",
    "register": "register version",
    "smoke-serve": "smoke-serve",
    "promote-challenger": "promote to challenger (floor)",
    "gate": "gate vs champion",
    "fit-drift-reference": "fit drift reference",
    "promote": "promote + roll out",
    "rollback": "rollback policy",
    "merge-feedback": "merge feedback",
}


class PipelineFailed(UserError):
    """The run itself failed (bad data, a failing step): one line, exit status 1."""

    exit_code = 1


_ERROR_LINE = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception)): (.+)$")


def _is_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))


def _check_label_mapping(label_mapping: str | None) -> None:
    if not label_mapping:
        return
    from driftloop.datasets import LabelMapping

    try:
        LabelMapping.parse(label_mapping)
    except (ValueError, TypeError) as exc:
        raise UserError(f"--label-mapping: {exc}") from None


def search_parameter(blueprint, **given: str | None) -> str:
    """The training pipeline's ``search`` parameter (JSON) from the search options;
    ``""`` when none is given. Bad values fail here, in one line naming the option."""
    if all(value is None for value in given.values()):
        return ""
    from driftloop.training.presets import SearchSettings

    options: dict = {
        name: value
        for name, value in (
            ("preset", given["preset"]),
            ("sampler", given["sampler"]),
            ("pruner", given["pruner"]),
            ("validation", given["validation"]),
            ("warm_start", given.get("warm_start")),
        )
        if value is not None
    }
    if given["trials"] is not None:
        try:
            options["trials"] = int(given["trials"])
        except ValueError:
            raise UserError(f"--trials: not a whole number: {given['trials']!r}") from None
    if given["time_budget"] is not None:
        try:
            options["time_budget_s"] = float(given["time_budget"])
        except ValueError:
            raise UserError(
                f"--time-budget: not a number of seconds: {given['time_budget']!r}"
            ) from None
    try:
        if given["candidates"] is not None:
            options["candidates"] = SearchSettings.parse(
                {"candidates": given["candidates"]}
            ).candidates
        search = SearchSettings(**options)
        search.plan(blueprint, blueprint.candidates(0))  # unknown --candidates fail here
        if search.validation == "timeseries" and not blueprint.time_column:
            raise ValueError(
                "--validation timeseries: the rows have no time column (give --time-column)"
            )
    except ValueError as exc:
        raise UserError(str(exc)) from None
    return search.to_json()


def parse_params(values: tuple[str, ...] | list[str]) -> dict:
    """``--param NAME=VALUE`` options as blueprint options: numbers, true/false and null
    read as such, anything else as text. A value without ``=`` is one error line."""
    import json

    params: dict = {}
    for value in values:
        name, sep, text = value.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise UserError(f"--param: expected NAME=VALUE (e.g. hidden_size=128), got {value!r}")
        try:
            params[name] = json.loads(text)
        except ValueError:
            params[name] = text
        if isinstance(params[name], list | dict):
            params[name] = text
    return params


def _failure_message(result) -> str:
    """One line: which step failed and the exception it died of (from the task's log)."""
    task = result.failed_task
    if task is None:
        return f"pipeline failed: {result.error or 'unknown error'} (log: {result.log_path})"
    cause = next(
        (
            f"{match.group(1).rsplit('.', 1)[-1]}: {match.group(2)}"
            for line in reversed(result.tasks[task].log)
            if (match := _ERROR_LINE.match(line))
        ),
        "see the log",
    )
    return f"step {task!r} failed: {cause} (log: {result.log_path})"


def _progress_printer(console):
    from rich.markup import escape

    def show(event) -> None:
        title = STEP_TITLES.get(event.task, event.task)
        if event.kind == "started":
            console.print(f"  [cyan]▶[/] {escape(title)} …")
        elif event.status == "SUCCESS":
            console.print(f"  [green]✓[/] {escape(title)} [dim]{event.seconds:.1f} s[/]")
        else:
            console.print(f"  [red]✗[/] {escape(title)} [dim]{event.seconds or 0:.1f} s[/]")

    return show


def summarize(result, model_name: str, primary_metric: str, tracking_uri: str) -> dict:
    """The facts the summary shows, all read from task outputs and the registry."""
    trained = result.json_output("train", "summary") or {}
    test_metrics = result.json_output("evaluate") or {}
    version = result.output("register")
    gate_report = result.artifact_json("gate", "report") or {}
    # a version below the floor stops at promote-challenger: that step's answer is the decision
    decision = result.output("gate") or result.output("promote-challenger")
    if not gate_report:
        gate_report = result.artifact_json("promote-challenger", "report") or {}
    aliases: list[str] = []
    fallback = None
    if version is not None:
        from driftloop.lineage import TAG_FALLBACK
        from driftloop.registry import ModelRegistry

        registry = ModelRegistry(tracking_uri)
        current = registry.aliases(model_name)
        aliases = sorted(alias for alias, v in current.items() if str(v) == str(version))
        # the evaluate step may have registered a fallback (forecast: persistence) in place
        # of the train step's choice; the version's tags say so, the run's names what serves
        version_tags = registry.get_version(model_name, version).tags
        if TAG_FALLBACK in version_tags:
            run_id = result.output("train", "run_id")
            run_tags = registry.client.get_run(run_id).data.tags if run_id else {}
            fallback = fallback_facts(version_tags, run_tags)
    return {
        "candidates": trained.get("candidates", []),
        "best_candidate": trained.get("best_candidate"),
        "fallback": fallback,
        "search": trained.get("search", {}),
        "primary_metric": primary_metric,
        "run_id": result.output("train", "run_id"),
        "test_metrics": test_metrics,
        "version": version,
        "decision": decision,
        "reason": gate_report.get("reason"),
        "champion_score": gate_report.get("champion_score"),
        "challenger_score": gate_report.get("challenger_score"),
        "aliases": aliases,
        "timings": result.timings,
        "run_dir": str(result.run_dir),
    }


def fallback_facts(version_tags: dict, run_tags: dict) -> dict | None:
    """What a version registered in place of the train step's choice, and why (its
    ``fallback.*`` tags; the run's ``best_candidate`` names the fallback); None: no fallback."""
    from driftloop.lineage import TAG_BEST_CANDIDATE, TAG_FALLBACK, TAG_FALLBACK_REPLACED

    if TAG_FALLBACK not in version_tags:
        return None
    return {
        "registered": run_tags.get(TAG_BEST_CANDIDATE, "the fallback"),
        "replaced": version_tags.get(TAG_FALLBACK_REPLACED),
        "reason": version_tags[TAG_FALLBACK],
    }


def _candidate_score(candidate: dict, metric: str) -> float | None:
    metrics = candidate.get("metrics") or {}
    for key in (metric, f"val_{metric}", f"validation_{metric}"):
        if key in metrics:
            return float(metrics[key])
    return None


def _near_tie_note(summary: dict, metric: str, greater_is_better: bool) -> str | None:
    """Why the chosen candidate is not the top score, when it is not."""
    scores = {
        str(c.get("name")): score
        for c in summary["candidates"]
        if (score := _candidate_score(c, metric)) is not None
    }
    chosen = summary["best_candidate"]
    if chosen not in scores:
        return None
    pick = max if greater_is_better else min
    top_name = pick(scores, key=scores.get)
    if scores[top_name] == scores[chosen]:
        return None
    return (
        f"{chosen} chosen over {top_name} ({scores[top_name]:.4f}): a near-tie the validation "
        "split cannot resolve goes to the candidate declared first"
    )


def _search_note(search: dict) -> str | None:
    """One line on how the candidates were searched and scored."""
    validation = (search.get("validation") or {}).get("reason")
    if not search.get("trials"):
        return f"validation: {validation}" if validation and search.get("settings") else None
    studies = search.get("searches") or []
    complete = sum(s.get("complete", 0) for s in studies)
    pruned = sum(s.get("pruned", 0) for s in studies)
    settings = search.get("settings") or {}
    return (
        f"search: {settings.get('sampler', 'tpe')} sampler, {settings.get('pruner', 'hyperband')}"
        f" pruner, {complete} trials complete, {pruned} pruned in {search.get('seconds', 0):.0f} s;"
        f" validation: {validation}; studies in {search.get('storage')}"
    )


def render_summary(
    console, summary: dict, model_name: str, *, greater_is_better: bool = True
) -> None:
    from rich.table import Table

    metric = summary["primary_metric"]
    candidates = Table(title="candidates (validation split)", title_justify="left")
    candidates.add_column("candidate")
    candidates.add_column(metric, justify="right")
    candidates.add_column("fit s", justify="right")
    candidates.add_column("")
    fallback = summary.get("fallback")
    for candidate in summary["candidates"]:
        score = _candidate_score(candidate, metric)
        fit = candidate.get("fit_seconds")
        chosen = "chosen" if candidate.get("name") == summary["best_candidate"] else ""
        if fallback and chosen:
            chosen = "chosen, replaced at test"
        elif fallback and candidate.get("name") == fallback["registered"]:
            chosen = "registered (fallback)"
        candidates.add_row(
            str(candidate.get("name")),
            f"{score:.4f}" if score is not None else "-",
            f"{float(fit):.1f}" if fit is not None else "-",
            chosen,
        )
    console.print(candidates)
    search_line = _search_note(summary.get("search") or {})
    if search_line:
        console.print(search_line, style="dim", highlight=False)
    near_tie = _near_tie_note(summary, metric, greater_is_better)
    if near_tie:
        console.print(near_tie, style="dim", highlight=False)

    outcome = Table(title="result", title_justify="left", show_header=False)
    outcome.add_column("", style="bold")
    outcome.add_column("")
    test_score = summary["test_metrics"].get(metric)
    outcome.add_row("model", f"{model_name} version {summary['version']}")
    if fallback:
        outcome.add_row(
            "registered",
            f"{fallback['registered']} in place of {fallback['replaced']}: {fallback['reason']}",
        )
    outcome.add_row(f"test {metric}", f"{test_score:.4f}" if test_score is not None else "-")
    outcome.add_row("decision", str(summary["decision"]))
    outcome.add_row("reason", str(summary["reason"]))
    outcome.add_row("aliases", ", ".join(summary["aliases"]) or "(none)")
    outcome.add_row("mlflow run", str(summary["run_id"]))
    outcome.add_row("run folder", summary["run_dir"])
    console.print(outcome)


@click.command()
@click.argument("blueprint_name", metavar="BLUEPRINT")
@click.option("--data", "data", metavar="PATH_OR_URL", help="Data file (path or http(s) URL).")
@click.option("--dataset", metavar="NAME", help="Named dataset (default: the blueprint's).")
@click.option(
    "--label-mapping",
    metavar="MAPPING",
    help='Raw labels to classes, e.g. "negative=1,2;positive=4,5".',
)
@click.option(
    "--target",
    metavar="COLUMN",
    help="Column to predict (tabular); for --task anomaly an optional label column.",
)
@click.option(
    "--task",
    type=click.Choice(
        [
            "auto",
            "classification",
            "regression",
            "clustering",
            "anomaly",
            "timeseries",
            "detection",
        ]
    ),
    help="Kind of problem (tabular; default: auto -- classification, regression or "
    "timeseries, decided from the target and the columns; vision: classification or "
    "detection -- objects on canvases, ranked by mAP50).",
)
@click.option(
    "--contamination",
    type=click.FloatRange(0.0, 0.5, min_open=True),
    help="Share of rows flagged as anomalies (tabular --task anomaly; default 0.05).",
)
@click.option(
    "--time-column",
    metavar="COLUMN",
    help="Column of times that orders the series (tabular --task timeseries).",
)
@click.option(
    "--horizon",
    type=click.IntRange(min=1),
    help="Steps ahead to forecast (tabular --task timeseries; default: one season).",
)
@click.option("--id-column", metavar="COLUMN", help="Column of unique row ids (tabular).")
@click.option(
    "--date-column", metavar="COLUMN", help="Column of dates (forecast; found when not given)."
)
@click.option(
    "--value-column",
    metavar="COLUMN",
    help="Column of prices (forecast; e.g. Close or 'Adj Close'; found when not given).",
)
@click.option("--series", metavar="NAME", help="Name of the series (forecast; feedback by date).")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="A blueprint option, recorded on the version (repeatable; e.g. hidden_size=128).",
)
@click.option(
    "--metric",
    metavar="NAME",
    help="Rank and gate by this metric instead of the blueprint's (e.g. accuracy, mae).",
)
@click.option(
    "--floor",
    type=float,
    help="Score a first model must reach (a ceiling for lower-is-better metrics).",
)
@click.option("--experiment", metavar="NAME", help="MLflow experiment (default: settings).")
@click.option("--model-name", metavar="NAME", help="Registered model name (default: BLUEPRINT).")
@click.option("--seed", type=int, help="Random seed (default: settings).")
@click.option(
    "--min-improvement",
    type=click.FloatRange(0.0, 1.0),
    help="Relative gain a challenger needs over the champion (default: settings).",
)
@click.option(
    "--significance",
    type=click.Choice(["none", "mcnemar"]),
    default="none",
    show_default=True,
    help="Also require the gain to be significant: mcnemar (classifiers; exact McNemar "
    "test on the rows both versions are judged on).",
)
@click.option(
    "--alpha",
    "significance_alpha",
    type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
    default=0.05,
    show_default=True,
    help="Significance level of --significance.",
)
@click.option(
    "--preset",
    metavar="fast|medium|best",
    help="Search preset: fast (~15 trials, light candidates, holdout), medium (~40 trials, "
    "boosting, 5-fold CV), best (time-budgeted, ensembles). Default: every candidate once.",
)
@click.option("--sampler", metavar="tpe|random|grid", help="Optuna sampler (default: tpe).")
@click.option("--pruner", metavar="hyperband|none", help="Optuna pruner (default: hyperband).")
@click.option("--trials", metavar="N", help="Trials over all candidates (default: the preset's).")
@click.option(
    "--time-budget", metavar="SECONDS", help="Wall-clock bound on the search (any preset)."
)
@click.option("--candidates", metavar="A,B,…", help="Search only these candidates.")
@click.option(
    "--validation",
    metavar="auto|holdout|kfold|timeseries",
    help="How candidates are scored (default: the preset's; auto decides from the data).",
)
@click.option(
    "--warm-start",
    metavar="NAME[@ALIAS|/VERSION]",
    help=(
        "Start the search from that version's tuned hyperparameters, and score its fitted "
        "model continued on the new rows where its learner allows (a bare NAME: @champion)."
    ),
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def train(
    blueprint_name: str,
    data: str | None,
    dataset: str | None,
    label_mapping: str | None,
    target: str | None,
    task: str | None,
    contamination: float | None,
    time_column: str | None,
    horizon: int | None,
    id_column: str | None,
    date_column: str | None,
    value_column: str | None,
    series: str | None,
    params: tuple[str, ...],
    metric: str | None,
    floor: float | None,
    experiment: str | None,
    model_name: str | None,
    seed: int | None,
    min_improvement: float | None,
    significance: str,
    significance_alpha: float,
    preset: str | None,
    sampler: str | None,
    pruner: str | None,
    trials: str | None,
    time_budget: str | None,
    candidates: str | None,
    validation: str | None,
    warm_start: str | None,
    as_json: bool,
) -> None:
    """Train, register and gate a model for BLUEPRINT (runs the training pipeline locally)."""
    from rich.console import Console

    from driftloop.blueprints import BlueprintSpec, get_blueprint
    from driftloop.settings import get_settings

    if data is not None and not _is_url(data):
        path = Path(data).expanduser()
        if not path.exists():  # a file, or a folder (an image folder for vision)
            raise UserError(f"--data: no such file or folder: {data}")
        data = str(path.resolve())
    options = {
        "target": target,
        "task": task,
        "contamination": contamination,
        "time_column": time_column,
        "horizon": horizon,
        "id_column": id_column,
        "date_column": date_column,
        "value_column": value_column,
        "series": series,
        "metric": metric,
        "floor": floor,
    }
    options |= parse_params(params)
    try:
        spec = BlueprintSpec(blueprint_name, {k: v for k, v in options.items() if v is not None})
        blueprint, chosen_dataset, note = get_blueprint(spec).prepare(dataset, data)
        blueprint.metric  # noqa: B018 - an unknown --metric fails here, before the run
    except (ValueError, FileNotFoundError, OSError) as exc:
        # DatasetError and blueprint option errors are ValueErrors whose message names the option
        raise UserError(str(exc)) from None
    _check_label_mapping(label_mapping)
    search = search_parameter(
        blueprint,
        preset=preset,
        sampler=sampler,
        pruner=pruner,
        trials=trials,
        time_budget=time_budget,
        candidates=candidates,
        validation=validation,
        warm_start=warm_start,
    )

    settings = get_settings()
    model_name = model_name or blueprint.name
    arguments = {
        "blueprint": blueprint.spec.to_text(),
        "model_name": model_name,
        "dataset": chosen_dataset,
        "data_source": data or "",
        "label_mapping": label_mapping or "",
        "seed": settings.seed if seed is None else seed,
        "min_improvement": settings.min_improvement if min_improvement is None else min_improvement,
        "experiment": experiment or settings.experiment,
        "search": search,
        "significance": "" if significance == "none" else significance,
        "significance_alpha": significance_alpha,
    }

    # Bound to the real stdout now: kfp.local's output is redirected while the run lasts.
    console = Console(file=sys.stderr if as_json else sys.stdout, highlight=False)
    console.print(
        f"[bold]driftloop train[/] {blueprint.name} → model [bold]{model_name}[/] "
        f"(dataset {chosen_dataset}{', ' + data if data else ''})"
    )
    if note:
        console.print(f"  {note}")

    from pipelines.local_run import run_pipeline_locally
    from pipelines.training import training_pipeline

    result = run_pipeline_locally(
        training_pipeline, arguments, settings, progress=_progress_printer(console)
    )
    if not result.succeeded:
        raise PipelineFailed(_failure_message(result))

    summary = summarize(
        result, model_name, blueprint.primary_metric, settings.resolved_tracking_uri
    )
    if as_json:
        import json

        click.echo(json.dumps(summary, indent=2, default=str))
    else:
        render_summary(console, summary, model_name, greater_is_better=blueprint.greater_is_better)
