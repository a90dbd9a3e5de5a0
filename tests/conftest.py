"""Fixtures shared by every test layer.

Tests never touch the user's ~/.driftloop or an ambient MLflow server: each
test gets its own DRIFTLOOP_HOME, and MLFLOW_TRACKING_URI points into it.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from driftloop.ports import free_port, free_ports  # noqa: F401 - shared by the test layers

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_dir() -> Path | None:
    """The steering repo's ../shared folder (data and CRD schemas), if present."""
    candidate = Path(os.environ.get("DRIFTLOOP_SHARED_DIR", REPO_ROOT.parent / "shared"))
    return candidate if candidate.is_dir() else None


@pytest.fixture(autouse=True, scope="session")
def _no_ambient_home_or_terminal_width(tmp_path_factory):
    """A test that builds ``Settings()`` without its own home gets a throwaway one.

    Without this it would open the developer's ~/.driftloop, whose store may
    carry a migration another checkout added (seen: "No such revision 0003").
    An inherited ``COLUMNS`` (pytest-xdist workers have one) would also narrow
    rich tables until the values a CLI test looks for are cut off.
    """
    names = ("DRIFTLOOP_HOME", "COLUMNS")
    saved = {name: os.environ.get(name) for name in names}
    if not saved["DRIFTLOOP_HOME"]:
        os.environ["DRIFTLOOP_HOME"] = str(tmp_path_factory.mktemp("ambient-home"))
    os.environ.pop("COLUMNS", None)
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(autouse=True, scope="module")
def _no_active_mlflow_experiment_per_module():
    """Start every module with no active MLflow experiment and no global tracking URI.

    A module-scoped fixture that calls ``mlflow.set_experiment`` (or trains in
    process: the train step calls ``mlflow.set_tracking_uri``) runs before the
    per-test guard below saves its state, so its experiment id and URI would
    outlive the module and make a later module's MLflow calls look in the wrong
    registry (seen: smoke-serve's runtime check found no registered model).
    """
    try:
        from mlflow.tracking import fluent
        from mlflow.tracking._tracking_service import utils as tracking
    except ImportError:
        yield
        return

    def forget() -> None:
        fluent._active_experiment_id = None
        os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
        tracking._tracking_uri = None

    forget()
    yield
    forget()


@pytest.fixture(autouse=True)
def _isolated_mlflow_tracking_uri():
    """Undo any test's ``mlflow.set_tracking_uri`` and ``mlflow.set_experiment``.

    MLflow keeps the URI in a module global and also writes it into
    ``os.environ``; a test that sets it would otherwise decide which registry
    every later test in the session talks to.
    """
    names = ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID")
    saved_env = {name: os.environ.get(name) for name in names}
    try:
        from mlflow.tracking import fluent
        from mlflow.tracking._tracking_service import utils as tracking
    except ImportError:  # code-only test runs without MLflow installed
        yield
        return
    saved_global = tracking._tracking_uri
    # mlflow.set_experiment keeps the experiment id the same way: a later test's
    # start_run would look for it in its own (other) registry
    saved_experiment = fluent._active_experiment_id
    yield
    tracking._tracking_uri = saved_global
    fluent._active_experiment_id = saved_experiment
    for name, value in saved_env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A private DRIFTLOOP_HOME, inherited by subprocesses (kfp.local tasks, servers)."""
    path = tmp_path / "driftloop-home"
    path.mkdir()
    monkeypatch.setenv("DRIFTLOOP_HOME", str(path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{path / 'mlflow.db'}")
    for name in ("DRIFTLOOP_TRACKING_URI", "DRIFTLOOP_STORE_URL", "DRIFTLOOP_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    from driftloop.settings import get_settings

    get_settings.cache_clear()
    yield path
    get_settings.cache_clear()


@pytest.fixture
def settings(home):
    from driftloop.settings import Settings

    return Settings(home=home)


@pytest.fixture(scope="session")
def olist_sample() -> Path:
    root = shared_dir()
    path = root / "data" / "olist" / "olist_order_reviews_sample.csv" if root else None
    if path is None or not path.is_file():
        pytest.skip("../shared/data/olist sample not present (only the steering checkout has it)")
    return path


@pytest.fixture(scope="session")
def crd_dir() -> Path:
    root = shared_dir()
    if root is None or not (root / "crds").is_dir():
        pytest.skip("../shared/crds not present: CRD schema validation needs it")
    return root / "crds"


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    url = os.environ.get(
        "DRIFTLOOP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    try:
        import sqlalchemy as sa

        engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
    except Exception as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"PostgreSQL not reachable at {url}: {exc}")
    return url


@pytest.fixture
def postgres_url(postgres_admin_url):
    """A fresh, empty PostgreSQL database for one test; dropped afterwards."""
    import sqlalchemy as sa

    name = f"driftloop_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'create database "{name}"'))
    yield postgres_admin_url.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))
    admin.dispose()
