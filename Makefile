# Two entry points: `make run` and `make test`. Both create .venv when missing and
# reinstall only when setup.cfg / pyproject.toml changed since the last install.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test install clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): setup.cfg pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

$(TEST_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

install: $(STAMP)

# A short predictor-guided search over NB201 on an embedded local Ray (a few minutes).
run: $(STAMP)
	$(PY) -m search.run --space nb201 --strategy narformer --budget 50 --batch 10 --seed 0 --executor ray

test: $(TEST_STAMP)
	$(PY) -m pytest

clean:
	rm -rf $(VENV) build *.egg-info

# Predictor quality figures of the README (each writes results/predictor/<name>.json).
NB101_SUBSET ?= ../shared/data/nb101/nb101_subset_valacc.npz
BENCH := $(PY) -m predictor.bench --quiet
.PHONY: bench-predictors
bench-predictors: $(STAMP)
	mkdir -p results/predictor
	for p in narformer tnasp gin mlp; do \
	  $(BENCH) --space nb201 --predictor $$p --train-size 781 --json results/predictor/$${p}_nb201_781_s0.json; \
	  $(BENCH) --space nb101 --predictor $$p --train-size 424 --data $(NB101_SUBSET) --json results/predictor/$${p}_nb101_424_s0.json; \
	done
	$(BENCH) --space nb201 --predictor narformer --train-size 1563 --json results/predictor/narformer_nb201_1563_s0.json

# NAR-Former ablations on NB201, 781 train archs (results/predictor/ablation_<name>.json).
.PHONY: bench-ablations
bench-ablations: $(STAMP)
	mkdir -p results/predictor
	$(BENCH) --space nb201 --predictor narformer --train-size 781 --set lambda_sr=0 --json results/predictor/ablation_no_sr.json
	$(BENCH) --space nb201 --predictor narformer --train-size 781 --set pool=mean --json results/predictor/ablation_mean_pool.json
	$(BENCH) --space nb201 --predictor narformer --train-size 781 --set augment=2 --json results/predictor/ablation_with_twins.json

# Search quality (README): 10 seeds x 100 evaluations on NB201, inline look-ups.
.PHONY: bench-search
bench-search: $(STAMP)
	$(PY) -m search.bench --space nb201 --strategies narformer,rea,random --budget 100 --seeds 10 \
	  --json results/search/nb201_budget100_seeds10.json
