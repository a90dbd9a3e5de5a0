"""The web console (``driftloop ui``): one page per question a person asks of the loop.

Which models and versions exist and what the gate decided (:mod:`.registry_view`);
how each model drifts and scores live over time (:mod:`.history`, drawn by
:mod:`.plots`); what the served model answers (:mod:`.predict`) and what it
answered lately (:mod:`.store_view`); which retraining runs the trigger launched
(:mod:`.runs`); an AutoML training run launched from a CSV (:mod:`.automl`).
Every page is rendered on the server (:mod:`.app`); the browser runs only the
small script that posts feedback and refreshes a running job.
"""
