"""The ``driftloop`` command.

Each command group lives in its own module and is imported only when it is
invoked, so ``driftloop --help`` stays fast (MLflow, KServe and alibi-detect
take seconds to import). Errors a user can fix are printed as one line and
exit with status 2; nothing a user typed ends in a traceback.
"""

from __future__ import annotations

import importlib
import sys

import click

# command name -> "module:attribute" inside driftloop.cli
COMMANDS: dict[str, str] = {
    "train": "train:train",
    "models": "models:models",
    "rollback": "models:rollback",
    "serve": "serve:serve",
    "predict": "serve:predict",
    "monitor": "monitor:monitor",
    "trigger": "trigger:trigger",
    "up": "stack:up",
    "down": "stack:down",
    "status": "stack:status",
    "demo": "demo:demo",
    "deploy": "deploy:deploy",
    "pipelines": "pipelines:pipelines",
    "import": "importer:import_command",
    "datasets": "datasets:datasets",
    "report": "report:report",
    "retrain": "retrain:retrain",
    "sample": "sample:sample",
    "ui": "ui:ui",
}


class UserError(click.ClickException):
    """An error the user can fix; printed as one line, exit status 2."""

    exit_code = 2

    def show(self, file=None) -> None:  # noqa: D102 - click API
        click.echo(f"driftloop: error: {self.format_message()}", err=True, file=file)


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        try:
            module = importlib.import_module(f"driftloop.cli.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"driftloop.cli.{module_name}":
                return None  # command not built into this installation
            raise
        return getattr(module, attribute)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="driftloop")
def cli() -> None:
    """driftloop: train, gate, serve, watch and retrain models."""


def main(argv: list[str] | None = None) -> int:
    from pydantic import ValidationError

    from driftloop.settings import SettingsConflictError

    try:
        cli.main(args=argv, prog_name="driftloop", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("driftloop: aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except (SettingsConflictError, FileNotFoundError) as exc:
        click.echo(f"driftloop: error: {exc}", err=True)
        return 2
    except ValidationError as exc:
        if exc.title != "Settings":
            raise
        # a DRIFTLOOP_* variable that does not parse: one line naming it, not a traceback
        problems = "; ".join(
            f"DRIFTLOOP_{'_'.join(map(str, error['loc'])).upper()}={error['input']!r}: "
            f"{error['msg']}"
            for error in exc.errors()
        )
        click.echo(f"driftloop: error: {problems}", err=True)
        return 2
    except click.exceptions.Exit as exc:
        return exc.exit_code
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
