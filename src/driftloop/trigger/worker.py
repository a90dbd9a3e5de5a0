"""Worker process for :class:`driftloop.trigger.launchers.LocalLauncher`.

``python -m driftloop.trigger.worker SPEC.json`` resolves the configured
pipeline, runs it once with the arguments it accepts and writes
``result.json`` (state, outputs, error) for the trigger to pick up. A KFP
pipeline runs through the spec's ``runner`` (``settings.retrain_runner``, by
default ``pipelines.local_run:run_pipeline_locally``, kfp.local), resolved
like the pipeline itself: the trigger never imports the pipelines package.
A plain function is called directly.

The process itself imports only the standard library: with a step host in its
environment (``driftloop.step_host``, kept warm by the trigger) the run is
executed by a child of that host, which has kfp, the pipelines, MLflow and the
ML stack imported already; without one, here.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from driftloop.step_host import run_step


def jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if hasattr(value, "__dict__"):
        return {k: jsonable(v) for k, v in vars(value).items() if not k.startswith("_")}
    return str(value)


def _failed_state(outputs: Any) -> str | None:
    """A LocalRunResult-like object that says the run did not succeed."""
    for attribute in ("succeeded", "ok"):
        if isinstance(outputs, dict) and outputs.get(attribute) is False:
            return f"pipeline reported {attribute}=False"
    state = outputs.get("state") if isinstance(outputs, dict) else None
    if isinstance(state, str) and state.upper() not in ("SUCCEEDED", "SUCCESS", "COMPLETE", "DONE"):
        return f"pipeline ended in state {state}"
    return None


def run(spec: dict[str, Any]) -> dict[str, Any]:
    from driftloop.settings import get_settings
    from driftloop.trigger.launchers import (
        RetrainRequest,
        accepted_inputs,
        resolve_reference,
        select_arguments,
    )

    request = RetrainRequest(**spec["request"])
    settings = get_settings()
    target = resolve_reference(spec["pipeline"])
    arguments = select_arguments(accepted_inputs(target), request, settings)
    print(f"driftloop worker: running {spec['pipeline']} with {arguments}", flush=True)
    if getattr(target, "component_spec", None) is not None:
        runner = resolve_reference(spec.get("runner") or settings.retrain_runner)
        result = runner(target, arguments, settings)
        outputs = jsonable(result.to_dict() if hasattr(result, "to_dict") else result)
        error = None
        if not getattr(result, "succeeded", True):
            failed = getattr(result, "failed_task", None)
            error = f"pipeline failed at task {failed}: {getattr(result, 'error', None)}"
    else:
        outputs = jsonable(target(**arguments))
        error = _failed_state(outputs)
    return {"state": "failed" if error else "succeeded", "outputs": outputs, "error": error}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m driftloop.trigger.worker SPEC.json", file=sys.stderr)
        return 2
    return run_step("driftloop.trigger.worker:execute", argv[0])


def execute(spec_path: str) -> int:
    """Run the spec at ``spec_path`` and write its result file; the exit status."""
    from driftloop.security import (
        mask_data,
        mask_secrets,
        masked_output,
        secret_values,
        write_private,
    )
    from driftloop.settings import get_settings

    spec = json.loads(Path(spec_path).read_text())
    secrets = secret_values(get_settings())
    # worker.log gets everything this process and its children (kfp.local tasks)
    # print: passwords in URLs and tokens are masked on the way
    with masked_output(secrets):
        try:
            result = run(spec)
        except BaseException as exc:  # everything ends up in result.json, KeyboardInterrupt too
            traceback.print_exc()
            error = mask_secrets(f"{type(exc).__name__}: {exc}", secrets)
            result = {"state": "failed", "outputs": None, "error": error}
        result = mask_data(json.loads(json.dumps(result, default=str)), secrets)
        result_path = Path(spec["result_path"])
        partial = result_path.with_suffix(".tmp")
        write_private(partial, json.dumps(result, indent=2, default=str))
        os.replace(partial, result_path)  # the trigger never reads a half-written result
        print(f"driftloop worker: {result['state']}", flush=True)
    return 0 if result["state"] == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
