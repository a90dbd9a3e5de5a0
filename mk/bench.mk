# Benchmarks (bench/). Included by the Makefile through `-include mk/*.mk`.
#   make bench            every section, full durations (< 20 min on 2 cores, plus up to
#                         ~2 h for automl, ~12 min for the soak and ~1 h for blueprints)
#   make bench-quick      every section, short (< 3 min plus ~17 min for automl, ~2 min
#                         for the soak and ~12 min for blueprints; the loop section is
#                         full-only)
#   make bench-SECTION    one section: serving drift loop pipelines scale automl soak vision recsys
#                         forecast blueprints
#   make bench-recsys     recsys: driftloop vs MostPop/ItemKNN/EASE/ALS per segment (~1 min)
#   make bench-vision     Fashion-MNIST CNN accuracy vs logistic regression, detection mAP50
#                         CenterNet vs connected components (full ~15 min, quick ~2 min)
#   make bench-soak       10 min (quick: 60 s) at the measured knee: 0 errors, rows stored ==
#                         answers, predictor RSS growth < 5 %, RSS/throughput PNG
#   make bench-blueprints every blueprint (sentiment, tabular, vision, forecast, recsys):
#                         driftloop's predictor vs a bare kserve.Model on the same model,
#                         REST v2 req/s and p50/p99 at 8 and 32 connections, predictor RSS
#                         at start, after warm-up and after 100k requests (quick: 10k);
#                         measured at load average 9-14 on 2 cores: quick ~12 min, full
#                         ~65 min (110k requests each; tabular at ~100 req/s takes ~20)
#   make bench-automl     driftloop tabular vs FLAML vs default LightGBM on 10 tables:
#                         60 s and 300 s budgets per table and system (up to ~2 h on 2 cores)
#   make bench-automl-quick  the same with one 30 s budget (~17 min on a busy 2-core box; indicative)
#   make bench-forecast   every forecast candidate vs persistence on MSFT and the S&P 500
#                         (MAE/RMSE/MAPE/MASE, Diebold-Mariano; ~6 min; quick ~2 min)
#   make bench-mlserver   the MLServer baseline's own virtualenv (.venv-mlserver)
# Results: $(BENCH_OUT)/results.json, results.md and the scale plots.

BENCH_OUT ?= bench/results
BENCH_ARGS ?=
BENCH_SECTIONS := serving drift loop pipelines scale automl soak forecast vision recsys blueprints

.PHONY: bench bench-quick bench-mlserver bench-automl-quick $(addprefix bench-,$(BENCH_SECTIONS))

bench-mlserver: $(STAMP)
	@bash scripts/setup-mlserver.sh .venv-mlserver

bench: $(STAMP) system-deps bench-mlserver
	$(BIN)/python -m bench.run --out $(BENCH_OUT) $(BENCH_ARGS)

bench-quick: $(STAMP) system-deps
	$(BIN)/python -m bench.run --quick --out $(BENCH_OUT)/quick $(BENCH_ARGS)

$(addprefix bench-,$(BENCH_SECTIONS)): bench-%: $(STAMP) system-deps
	$(BIN)/python -m bench.run --section $* --out $(BENCH_OUT)/$* $(BENCH_ARGS)

bench-automl-quick: $(STAMP)
	$(BIN)/python -m bench.run --quick --section automl --out $(BENCH_OUT)/automl-quick $(BENCH_ARGS)
