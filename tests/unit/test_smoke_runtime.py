"""Smoke-serve's runtime check: which logged requirements this environment cannot satisfy."""

from __future__ import annotations

from importlib import metadata

from driftloop.serving.smoke import _load_failure, requirement_mismatches


def test_requirements_this_environment_satisfies_pass():
    numpy = metadata.version("numpy")
    lines = [
        f"numpy=={numpy}",
        "scikit-learn",  # unpinned: any installed version
        "# a comment",
        "",
        "-r other-requirements.txt",  # pip options are not requirements
        "somepkg @ https://example.org/somepkg.whl",  # a URL names no version to check
        "never-installed-here==1.0; python_version < '3'",  # excluded by its marker
    ]
    assert requirement_mismatches(lines) == []


def test_a_missing_distribution_and_a_wrong_version_are_named():
    sklearn = metadata.version("scikit-learn")
    problems = requirement_mismatches(
        ["scikit-learn==0.0.1", "driftloop-absent-runtime>=2  # trained with it"]
    )
    assert problems == [
        f"scikit-learn==0.0.1 (installed: scikit-learn {sklearn})",
        "driftloop-absent-runtime>=2 (not installed)",
    ]


def test_a_local_version_label_satisfies_its_public_pin():
    torch = metadata.version("torch")  # 2.13.0+cpu here
    public = torch.split("+", 1)[0]
    assert requirement_mismatches([f"torch=={public}"]) == []


def test_a_predictor_that_died_of_a_missing_module_is_named():
    log = "Traceback ...\nModuleNotFoundError: No module named 'trainer_only.steps'\n"
    assert _load_failure(log) == (
        "runtime mismatch: the model needs module 'trainer_only.steps', "
        "which the serving environment lacks"
    )
    assert _load_failure("OSError: disk full") == ""
