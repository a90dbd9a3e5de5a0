"""KFP components: one module per pipeline step.

Each is a thin lightweight-Python ``@dsl.component`` that imports driftloop
inside its body and calls into it; no ML logic lives here. They run in the
driftloop image (``components._base.base_image``) on a cluster and as local
subprocesses under ``kfp.local``.
"""

from components.evaluate import evaluate
from components.fit_drift_reference import fit_drift_reference
from components.gate import gate
from components.ingest import ingest
from components.merge_feedback import merge_feedback
from components.promote import promote
from components.promote_challenger import promote_challenger
from components.register import register
from components.rollback import rollback
from components.smoke_serve import smoke_serve
from components.split import split
from components.train import train
from components.validate import validate

__all__ = [
    "evaluate",
    "fit_drift_reference",
    "gate",
    "ingest",
    "merge_feedback",
    "promote",
    "promote_challenger",
    "register",
    "rollback",
    "smoke_serve",
    "split",
    "train",
    "validate",
]
