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
	for s in 0 1 2; do \
	  $(BENCH) --space nb201 --predictor narformer --train-size 781 --seed $$s --json results/predictor/narformer_nb201_781_s$$s.json; \
	  $(BENCH) --space nb201 --predictor narformer --train-size 1563 --seed $$s --json results/predictor/narformer_nb201_1563_s$$s.json; \
	  $(BENCH) --space nb101 --predictor narformer --train-size 424 --seed $$s --data $(NB101_SUBSET) --json results/predictor/narformer_nb101_424_s$$s.json; \
	done
	for p in tnasp gin mlp; do \
	  $(BENCH) --space nb201 --predictor $$p --train-size 781 --json results/predictor/$${p}_nb201_781_s0.json; \
	  $(BENCH) --space nb101 --predictor $$p --train-size 424 --data $(NB101_SUBSET) --json results/predictor/$${p}_nb101_424_s0.json; \
	done
	$(BENCH) --space nb201 --predictor tnasp --train-size 781 --set self_evolution=True --json results/predictor/tnasp_se_nb201_781_s0.json
	$(BENCH) --space nb101 --predictor tnasp --train-size 424 --data $(NB101_SUBSET) --set self_evolution=True --json results/predictor/tnasp_se_nb101_424_s0.json
	$(BENCH) --space nb101 --predictor narformer --train-size 4236 --data $(NB101_SUBSET) --json results/predictor/narformer_nb101_4236_s0.json

# NAR-Former ablations on NB201, 781 train archs (results/predictor/ablation_<name>.json).
.PHONY: bench-ablations
bench-ablations: $(STAMP)
	mkdir -p results/predictor
	$(BENCH) --space nb201 --predictor narformer --train-size 781 --set lambda_sr=0 --json results/predictor/ablation_no_sr.json
	$(BENCH) --space nb201 --predictor narformer --train-size 781 --set pool=mean --json results/predictor/ablation_mean_pool.json
	$(BENCH) --space nb201 --predictor narformer --train-size 781 --set augment=2 --json results/predictor/ablation_with_twins.json
	$(BENCH) --space nb201 --predictor narformer --train-size 781 --set augment=2 --set lambda_ac=0 --json results/predictor/ablation_twins_no_ac.json
	for s in 0 1 2; do \
	  $(BENCH) --space nb101 --predictor narformer --train-size 424 --seed $$s --data $(NB101_SUBSET) --set augment=2 --set lambda_ac=0 \
	    --json results/predictor/narformer_twins_no_ac_nb101_424_s$$s.json; \
	done

# Search quality (README): 10 seeds x 100 evaluations on NB201, inline look-ups.
.PHONY: bench-search
bench-search: $(STAMP)
	$(PY) -m search.bench --space nb201 --strategies narformer,rea,random --budget 100 --seeds 10 \
	  --json results/search/nb201_budget100_seeds10.json
