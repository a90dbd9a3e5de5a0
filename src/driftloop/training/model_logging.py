"""Log fitted models so they load anywhere, and load them back for driftloop.

A logged model is an MLflow model with two flavours over one pickle
(``model.pkl``, cloudpickle):

- ``sklearn``: the fitted pipeline itself. driftloop (serving, evaluation,
  gate, drift reference) loads it with :func:`load_native`.
- ``python_function``: served by this module's ``_load_pyfunc``; its
  ``predict`` returns what the predictor returns, as a DataFrame: for a
  classifier (``predict_proba`` and ``classes_``) a ``label`` column plus one
  ``proba_<class>`` column per class; for anything else a ``prediction``
  column (or ``label`` for a classifier without probabilities).

The pickle references driftloop classes (``TextNormalizer``,
``StringLabelXGBClassifier``, ...) and driftloop is not on PyPI, so the
driftloop package travels inside the model (MLflow ``code_paths``: ``code/driftloop``)
and the logged ``requirements.txt`` pins, at the versions training used, every
distribution the pickle imports (``xgboost-cpu`` when that is what is installed,
not the 470 MB ``xgboost``). ``mlflow.pyfunc.load_model`` and ``mlflow models
serve`` then work in an environment with only ``mlflow`` and those requirements.

Portability rule: what unpickling and predicting import must stay light.
This module, ``driftloop/__init__.py``, ``driftloop/training/__init__.py`` and
``driftloop/blueprints`` import only numpy, pandas, scikit-learn, scipy and
mlflow at module level; everything heavier (kserve, kfp, torch, alibi-detect,
driftloop.registry) is imported inside the functions that need it.
"""

from __future__ import annotations

import io
import pickletools
import sys
from contextlib import contextmanager, nullcontext
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

LABEL_COLUMN = "label"
PREDICTION_COLUMN = "prediction"
PROBA_PREFIX = "proba_"
# What the shipped driftloop code and the pickle need whatever the model is.
BASE_REQUIREMENTS = ("cloudpickle", "numpy", "pandas", "scikit-learn", "scipy")
# Distributions never written as requirements: driftloop travels as code, mlflow
# is added (pinned) by MLflow itself.
_NOT_REQUIREMENTS = frozenset({"driftloop", "mlflow", "mlflow-skinny"})
_SERIALIZATION_FORMAT = "cloudpickle"


# --- what the pyfunc flavour returns -------------------------------------------
def is_classifier_with_proba(model: Any) -> bool:
    return hasattr(model, "predict_proba") and hasattr(model, "classes_")


def predictor_output(model: Any, data: Any) -> pd.DataFrame:
    """What the model's pyfunc flavour returns for ``data`` (see the module docstring)."""
    index = data.index if isinstance(data, pd.DataFrame) else None
    if is_classifier_with_proba(model):
        classes = [str(label) for label in np.asarray(model.classes_).tolist()]
        probabilities = np.asarray(model.predict_proba(data), dtype=float)
        frame = pd.DataFrame(
            probabilities, columns=[f"{PROBA_PREFIX}{label}" for label in classes], index=index
        )
        labels = np.asarray(classes, dtype=object)[np.argmax(probabilities, axis=1)]
        frame.insert(0, LABEL_COLUMN, labels)
        return frame
    predictions = np.asarray(model.predict(data))
    if predictions.ndim == 2:  # several values per row (a forecast's steps): one column each
        columns = [f"{PREDICTION_COLUMN}_{k}" for k in range(1, predictions.shape[1] + 1)]
        return pd.DataFrame(predictions, columns=columns, index=index)
    column = LABEL_COLUMN if hasattr(model, "classes_") else PREDICTION_COLUMN
    if column == LABEL_COLUMN:
        predictions = predictions.astype(str).astype(object)
    return pd.DataFrame({column: predictions}, index=index)


class PredictorPyfunc:
    """The ``python_function`` implementation: the fitted model, predictor-shaped output."""

    def __init__(self, model: Any):
        self.model = model

    def get_raw_model(self) -> Any:
        """The fitted sklearn model (``PyFuncModel.get_raw_model()`` returns it)."""
        return self.model

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> pd.DataFrame:
        return predictor_output(self.model, data)


def _load_pyfunc(path: str) -> PredictorPyfunc:
    """Called by ``mlflow.pyfunc.load_model`` (this module is the flavour's loader_module)."""
    import mlflow.sklearn

    return PredictorPyfunc(mlflow.sklearn._load_pyfunc(path).get_raw_model())


# --- requirements ----------------------------------------------------------------
def pickled_modules(model: Any) -> set[str]:
    """Top-level modules that unpickling ``model`` (cloudpickle) imports."""
    import cloudpickle

    buffer = io.BytesIO()
    cloudpickle.dump(model, buffer)
    modules: set[str] = set()
    memo: dict[int, Any] = {}
    pushed: list[Any] = []  # last values pushed (strings, or None for anything else)
    for opcode, arg, _ in pickletools.genops(buffer.getvalue()):
        name = opcode.name
        if name == "GLOBAL" or name == "INST":
            modules.add(str(arg).split(" ", 1)[0])
            pushed.append(None)
        elif name == "STACK_GLOBAL":
            if len(pushed) >= 2 and isinstance(pushed[-2], str):
                modules.add(pushed[-2])
            pushed.append(None)
        elif name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"):
            pushed.append(arg)
        elif name == "MEMOIZE":
            memo[len(memo)] = pushed[-1] if pushed else None
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[int(arg)] = pushed[-1] if pushed else None
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            pushed.append(memo.get(int(arg)))
        else:
            pushed.append(None)
        del pushed[:-2]
    return {module.split(".", 1)[0] for module in modules if module}


def _distribution_for(module: str, owners: dict[str, list[str]]) -> str | None:
    if module in sys.stdlib_module_names or module in ("builtins", "__main__"):
        return None
    candidates = sorted(set(owners.get(module, [])))
    if not candidates:
        return None
    # xgboost-cpu and xgboost install the same module: pin the one training used,
    # preferring a CPU-only build if both are present.
    cpu = [name for name in candidates if name.lower().endswith("-cpu")]
    return (cpu or candidates)[0]


def pinned_requirements(model: Any) -> list[str]:
    """``dist==version`` for every distribution the model's pickle imports, plus the
    base set the shipped driftloop code needs; versions are the installed ones."""
    owners = metadata.packages_distributions()
    distributions = set(BASE_REQUIREMENTS)
    for module in pickled_modules(model):
        distribution = _distribution_for(module, owners)
        if distribution is not None:
            distributions.add(distribution)
    # scikit-learn's module is sklearn; normalise names for the exclusion check
    requirements = []
    for distribution in sorted(distributions, key=str.lower):
        if distribution.lower().replace("_", "-") in _NOT_REQUIREMENTS:
            continue
        requirements.append(f"{distribution}=={metadata.version(distribution)}")
    return requirements


def driftloop_code_path() -> str:
    """The driftloop package directory, shipped as ``code/driftloop`` in every model."""
    import driftloop

    return str(Path(driftloop.__file__).resolve().parent)


# --- the MLflow flavour ------------------------------------------------------------
_LOADER_MODULE = __name__  # the python_function flavour's loader_module


class _PortableSklearnFlavor:
    """What ``mlflow.models.Model.log`` calls: the sklearn flavour, then the
    ``python_function`` flavour pointed at this module."""

    @staticmethod
    def save_model(path, mlflow_model, sk_model, **kwargs):
        import mlflow.sklearn
        from mlflow.models.model import MLMODEL_FILE_NAME
        from mlflow.pyfunc import FLAVOR_NAME as PYFUNC

        mlflow.sklearn.save_model(sk_model, path, mlflow_model=mlflow_model, **kwargs)
        if PYFUNC in mlflow_model.flavors:  # absent only for a model without predict()
            mlflow_model.flavors[PYFUNC]["loader_module"] = _LOADER_MODULE
        mlflow_model.save(str(Path(path) / MLMODEL_FILE_NAME))


def log_model(
    model: Any,
    *,
    name: str,
    input_example: pd.DataFrame,
    pip_requirements: list[str] | None = None,
):
    """Log ``model`` (fitted) under ``name`` in the active run; returns MLflow's ModelInfo.

    The signature is inferred from ``input_example`` and the pyfunc output on it.
    ``pip_requirements`` replaces the inferred pins (:func:`pinned_requirements`);
    MLflow adds ``mlflow==<version>`` in both cases.
    """
    from mlflow.models import Model, infer_signature

    if not isinstance(input_example, pd.DataFrame):
        raise TypeError(f"input_example must be a DataFrame, got {type(input_example).__name__}")
    signature = infer_signature(input_example, predictor_output(model, input_example))
    return Model.log(
        artifact_path=None,
        name=name,
        flavor=_PortableSklearnFlavor(),
        flavor_name="sklearn",  # recorded on the logged model (telemetry only)
        sk_model=model,
        code_paths=[driftloop_code_path()],
        signature=signature,
        input_example=input_example,
        pip_requirements=(
            list(pip_requirements) if pip_requirements is not None else pinned_requirements(model)
        ),
        # skops (MLflow's default) writes a TF-IDF vocabulary as ~20x the
        # pickle's size and loads it seconds slower; the artifact store is
        # trusted the same way the registry is.
        serialization_format=_SERIALIZATION_FORMAT,
    )


# --- loading for driftloop --------------------------------------------------------------
@contextmanager
def _sys_path_kept():
    """MLflow prepends the model's ``code/`` folder to sys.path on every load; driftloop
    uses its own installed code, and a long-running server must not grow sys.path."""
    saved = list(sys.path)
    try:
        yield
    finally:
        sys.path[:] = saved


def load_native(model_uri: str, tracking_uri: str | None = None) -> Any:
    """The fitted sklearn model behind ``model_uri`` (any ``runs:/``, ``models:/`` URI).

    Reads the ``sklearn`` flavour, so models logged before this module (plain
    ``mlflow.sklearn.log_model``) load too. Classes resolve against the
    installed driftloop, not the copy shipped in the model. ``tracking_uri``
    scopes MLflow's global URI for the load (``models:/`` resolves through it).
    """
    import mlflow.sklearn

    if tracking_uri:
        from driftloop.registry import scoped_tracking_uri

        scope = scoped_tracking_uri(tracking_uri)
    else:
        scope = nullcontext()
    with scope, _sys_path_kept():
        return mlflow.sklearn.load_model(model_uri)
