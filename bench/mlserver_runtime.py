"""An MLServer runtime around the raw text classifier: MLServer's counterpart of
``bench.kserve_baseline`` (runs in MLServer's own virtualenv, not driftloop's).

mlserver-mlflow 1.7.1 cannot answer the sentiment model: its pyfunc returns a frame
with a column of per-class probability dicts, and MLServer's pandas codec has no
datatype for object columns (every request answered 500 ``KeyError: 'O'``). This
runtime loads the same MLflow model folder with the sklearn flavour and answers what
the bare KServe baseline answers: ``label`` (BYTES) and ``probabilities`` (FP32).
MLServer's adaptive batching (``max_batch_size``/``max_batch_time`` in
model-settings.json) joins requests before ``predict`` and splits the answer after.
"""

from __future__ import annotations

import mlflow.sklearn
import numpy as np
from mlserver import MLModel
from mlserver.codecs import NumpyCodec, StringCodec
from mlserver.types import InferenceRequest, InferenceResponse


class TextClassifierRuntime(MLModel):
    async def load(self) -> bool:
        self._estimator = mlflow.sklearn.load_model(self.settings.parameters.uri)
        self._classes = np.asarray(self._estimator.classes_).astype(str)
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        texts = StringCodec.decode_input(payload.inputs[0])
        probabilities = np.asarray(self._estimator.predict_proba(texts), dtype=np.float32)
        labels = self._classes[probabilities.argmax(axis=1)].tolist()
        return InferenceResponse(
            model_name=self.name,
            id=payload.id,
            outputs=[
                StringCodec.encode_output("label", labels),
                NumpyCodec.encode_output("probabilities", probabilities),
            ],
        )
