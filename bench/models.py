"""Build each benchmark model once per run and share it between sections."""

from __future__ import annotations

from bench.context import Context, SectionSkipped
from bench.fixtures import ModelFixture, build_sentiment, build_tabular

QUICK_SENTIMENT_ROWS = 3000


def sentiment_model(ctx: Context) -> ModelFixture:
    if "sentiment" not in ctx.cache:
        ctx.log("training the sentiment champion with driftloop's training code")
        try:
            model = build_sentiment(
                ctx.work / "home", max_rows=QUICK_SENTIMENT_ROWS if ctx.budget.quick else None
            )
        except ImportError as exc:
            raise SectionSkipped(f"driftloop training code not importable: {exc}") from exc
        ctx.results.note(
            "models", f"sentiment: {model.trained_by}; fit {model.train_seconds:.1f} s"
        )
        ctx.cache["sentiment"] = model
    return ctx.cache["sentiment"]


def tabular_model(ctx: Context) -> ModelFixture:
    if "tabular" not in ctx.cache:
        model = build_tabular(ctx.work / "home")
        ctx.results.note("models", f"tabular-xgb: {model.trained_by}")
        ctx.cache["tabular"] = model
    return ctx.cache["tabular"]
