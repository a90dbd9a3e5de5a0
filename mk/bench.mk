# Benchmarks (bench/). Included by the Makefile through `-include mk/*.mk`.
#   make bench            every section, full durations (< 20 min on 2 cores)
#   make bench-quick      every section, short (< 3 min; the loop section is full-only)
#   make bench-SECTION    one section: serving drift loop pipelines scale
#   make bench-mlserver   the MLServer baseline's own virtualenv (.venv-mlserver)
# Results: $(BENCH_OUT)/results.json, results.md and the scale plots.

BENCH_OUT ?= bench/results
BENCH_ARGS ?=
BENCH_SECTIONS := serving drift loop pipelines scale

.PHONY: bench bench-quick bench-mlserver $(addprefix bench-,$(BENCH_SECTIONS))

bench-mlserver: $(STAMP)
	@bash scripts/setup-mlserver.sh .venv-mlserver

bench: $(STAMP) system-deps bench-mlserver
	$(BIN)/python -m bench.run --out $(BENCH_OUT) $(BENCH_ARGS)

bench-quick: $(STAMP) system-deps
	$(BIN)/python -m bench.run --quick --out $(BENCH_OUT)/quick $(BENCH_ARGS)

$(addprefix bench-,$(BENCH_SECTIONS)): bench-%: $(STAMP) system-deps
	$(BIN)/python -m bench.run --section $* --out $(BENCH_OUT)/$* $(BENCH_ARGS)
