"""Any table: classification or regression on the columns of a CSV or Parquet file.

Options: ``target`` (the column to predict), ``task`` (classification,
regression; "auto" is resolved from the target by :meth:`resolve`), ``id_column``,
``dataset`` (a shipped table), and the metric overrides ``metric`` / ``floor``.

Every candidate is ``TableSchema -> ColumnTransformer -> estimator``: column
kinds are inferred from the training rows, recorded in the model, and used by
the codec to check requests. Classification is ranked by macro-F1 (ROC-AUC
logged for two classes), regression by RMSE (lower is better; MAE, R² logged).

The package imports nothing: a logged model unpickles ``tabular.schema`` in an
environment that has only the model's requirements (see training.model_logging).
"""
