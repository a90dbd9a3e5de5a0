"""``driftloop sample BLUEPRINT``: real requests to try, from the blueprint's data.

Prints a v1 body (``{"instances": [...]}``) of ``--count`` rows drawn from the most recent
rows of the data (for ``forecast``: windows of the last closes, ``last_prices``), ready for
``driftloop predict`` or ``curl -d @-``; on stderr, each row's id and its true target.
"""

from __future__ import annotations

import json
import sys

import click

from driftloop.cli import UserError
from driftloop.cli.train import parse_params

RECENT_ROWS = 250  # rows are drawn from the most recent ones (a forecast's test period)


@click.command()
@click.argument("blueprint_name", metavar="BLUEPRINT")
@click.option("--dataset", metavar="NAME", help="Named dataset (default: the blueprint's).")
@click.option("--data", metavar="PATH", help="Data file (e.g. a CSV of daily closes).")
@click.option("--count", type=click.IntRange(1, 100), default=3, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Which rows are drawn.")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="A blueprint option.")
def sample(
    blueprint_name: str,
    dataset: str | None,
    data: str | None,
    count: int,
    seed: int,
    params: tuple[str, ...],
) -> None:
    """Print COUNT real requests for BLUEPRINT as a v1 body."""
    from driftloop.blueprints import BlueprintSpec, get_blueprint

    try:
        blueprint = get_blueprint(BlueprintSpec(blueprint_name, parse_params(params)))
        blueprint, dataset, _ = blueprint.prepare(dataset, data)
        frame = blueprint.load(dataset, data)
    except (ValueError, OSError) as exc:  # DatasetError and option errors name the option
        raise UserError(str(exc)) from None
    recent = frame.tail(RECENT_ROWS)
    rows = recent.sample(min(count, len(recent)), random_state=seed).sort_index()
    instances = []
    for _, row in rows.iterrows():
        one = row.to_frame().T.infer_objects()
        instances += json.loads(blueprint.input_example(one).to_json(orient="records"))
        truth = one[blueprint.target_column].iloc[0] if blueprint.target_column in one else "?"
        click.echo(f"{blueprint.id_column} {one[blueprint.id_column].iloc[0]}: "
                   f"{blueprint.target_column} {truth}", err=True)  # fmt: skip
    json.dump({"instances": instances}, sys.stdout)
    click.echo()
