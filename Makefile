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

# What the engine is for, in about a minute: a predictor-guided search over NB201 on an embedded
# local Ray (100 evaluations), then random search at the same budget for comparison.
run: $(STAMP)
	$(VENV)/bin/narnas search --space nb201 --strategy narformer --budget 100 --batch 10 --seed 0 --executor ray
	@echo "random search at the same budget and seed, for comparison:"
	$(VENV)/bin/narnas search --space nb201 --strategy random --budget 100 --batch 10 --seed 0 --executor inline --quiet

# The report's test drives a real headless Chromium (Debian's chromium and chromium-driver).
# The suite on up to two workers, then the tests that time themselves (marker `alone`) one at a
# time, so the other worker's load cannot skew what they measure.
test: $(TEST_STAMP) browser
	$(PY) -m pytest -m "not alone"
	$(PY) -m pytest -m alone --numprocesses 0

.PHONY: browser
# Needs root and the network; where it cannot install them the browser test is skipped (under CI it fails).
browser:
	@command -v chromedriver >/dev/null && command -v chromium >/dev/null || { \
	  echo "installing chromium and chromium-driver (Debian packages) for the report's browser test"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } || \
	  echo "could not install chromium (apt-get needs root and the network): the report's browser test will be skipped"; }

clean:
	rm -rf $(VENV) build *.egg-info

# Predictor quality figures of the docs (each writes results/predictor/<name>.json);
# `python -m bench.table results/predictor/*.json` prints the table of docs/results.md from them.
NB101_SUBSET ?= ../shared/data/nb101/nb101_subset_valacc.npz
BENCH := $(PY) -m bench.predictors --quiet
NB101 := --space nb101 --data $(NB101_SUBSET)
# The NB101 recipe: two twins, a light AC loss, attention along the cell's edges.
NB101_RECIPE := --set augment=2 --set lambda_ac=0.05 --set weight_decay=0.05 --set attention=graph
R := results/predictor
.PHONY: bench-predictors
bench-predictors: $(STAMP)
	mkdir -p $(R)
	for s in 0 1 2; do \
	  $(BENCH) --space nb201 --predictor narformer --train-size 781 --seed $$s --json $(R)/narformer_nb201_781_s$$s.json; \
	  $(BENCH) --space nb201 --predictor narformer --train-size 1563 --seed $$s --json $(R)/narformer_nb201_1563_s$$s.json; \
	  $(BENCH) $(NB101) --predictor narformer --train-size 424 --seed $$s --json $(R)/narformer_nb101_424_s$$s.json; \
	  $(BENCH) $(NB101) --predictor narformer --train-size 424 --seed $$s $(NB101_RECIPE) \
	    --json $(R)/narformer_recipe_nb101_424_s$$s.json; \
	  $(BENCH) $(NB101) --predictor narformer --train-size 4236 --seed $$s $(NB101_RECIPE) --set epochs=150 \
	    --json $(R)/narformer_recipe_nb101_4236_s$$s.json; \
	  for p in tnasp gin mlp; do \
	    $(BENCH) --space nb201 --predictor $$p --train-size 781 --seed $$s --json $(R)/$${p}_nb201_781_s$$s.json; \
	    $(BENCH) $(NB101) --predictor $$p --train-size 424 --seed $$s --json $(R)/$${p}_nb101_424_s$$s.json; \
	  done; \
	  $(BENCH) --space nb201 --predictor tnasp --train-size 781 --seed $$s --set self_evolution=True \
	    --json $(R)/tnasp_se_nb201_781_s$$s.json; \
	  $(BENCH) $(NB101) --predictor tnasp --train-size 424 --seed $$s --set self_evolution=True \
	    --json $(R)/tnasp_se_nb101_424_s$$s.json; \
	  $(BENCH) --space nb201 --predictor tnasp --train-size 781 --seed $$s --set self_evolution=True \
	    --set evolution_method=reconstruction --json $(R)/tnasp_serec_nb201_781_s$$s.json; \
	  $(BENCH) $(NB101) --predictor tnasp --train-size 424 --seed $$s --set self_evolution=True \
	    --set evolution_method=reconstruction --json $(R)/tnasp_serec_nb101_424_s$$s.json; \
	done
	$(BENCH) $(NB101) --predictor narformer --train-size 4236 --json $(R)/narformer_nb101_4236_s0.json

# The papers' rows we can run that bench-predictors does not (docs/results.md "Side by side with the
# papers"; python -m bench.paper_table results/predictor/*.json prints the table). Every JSON
# also holds the papers' "100 test archs" score (10 draws of 100 held-out archs).
.PHONY: bench-papers
bench-papers: $(STAMP)
	mkdir -p $(R)
	for s in 0 1 2; do \
	  for n in 78 156 469 1563; do \
	    $(BENCH) --space nb201 --predictor tnasp --train-size $$n --seed $$s --json $(R)/tnasp_nb201_$${n}_s$$s.json; \
	    $(BENCH) --space nb201 --predictor tnasp --train-size $$n --seed $$s --set self_evolution=True \
	      --json $(R)/tnasp_se_nb201_$${n}_s$$s.json; \
	  done; \
	  for n in 100 172 4236; do \
	    $(BENCH) $(NB101) --predictor tnasp --train-size $$n --seed $$s --json $(R)/tnasp_nb101_$${n}_s$$s.json; \
	    $(BENCH) $(NB101) --predictor tnasp --train-size $$n --seed $$s --set self_evolution=True \
	      --json $(R)/tnasp_se_nb101_$${n}_s$$s.json; \
	  done; \
	  $(BENCH) --space nb201 --predictor narformer --train-size 7812 --seed $$s --json $(R)/narformer_nb201_7812_s$$s.json; \
	  for v in "lambda_sr=0" "augment=2 lambda_ac=0" "augment=2"; do \
	    $(BENCH) $(NB101) --predictor narformer --train-size 4236 --seed $$s $$(for kv in $$v; do echo --set $$kv; done) \
	      --json $(R)/narformer_t5_$$(echo $$v | tr ' =' '__')_nb101_4236_s$$s.json; \
	  done; \
	done
	# NAR-Former Table 2's rows with our best NB201 variant (graph attention; 781's seed 0 is
	# bench-ablations' ablation_graph_attention.json); a JSON already there is kept
	for s in 0 1 2; do \
	  for n in 781 1563 7812; do \
	    out=$(R)/narformer_graph_nb201_$${n}_s$$s.json; \
	    test "$$n$$s" = 7810 || test -f $$out || $(BENCH) --space nb201 --predictor narformer --train-size $$n \
	      --seed $$s --set attention=graph --json $$out || exit 1; \
	  done; \
	done

# NAR-Former's Table 5 rows on other predictors (NP's GCN, TNASP's transformer with the tokenizer,
# Self_ID added, graph-isomorphism twins): NB101-4,236, 3 seeds; about 25-35 min per fit on 2 cores.
T5_VARIANTS := "gcn:" "tnasp:encoder=tokenizer self_id=add" "tnasp:encoder=tokenizer" "gcn:encoder=tokenizer" \
  "gcn:encoder=tokenizer augment=2" "gcn:encoder=tokenizer augment=2 lambda_ac=0.5" \
  "narformer:augment=2 augment_kind=isomorphism lambda_ac=0" "narformer:augment=2 augment_kind=isomorphism"
# A JSON already there is kept, so a stopped run continues where it was.
.PHONY: bench-table5
bench-table5: $(STAMP)
	mkdir -p $(R)
	for s in 0 1 2; do \
	  for pv in $(T5_VARIANTS); do \
	    p=$${pv%%:*}; v=$${pv#*:}; out=$(R)/$${p}_t5_$$(echo "$$v" | tr ' =' '__')_nb101_4236_s$$s.json; \
	    test -f $$out || $(BENCH) $(NB101) --predictor $$p --train-size 4236 --seed $$s \
	      $$(for kv in $$v; do echo --set $$kv; done) --json $$out || exit 1; \
	  done; \
	done

# Ablations: NAR-Former's parts on NB201-781, the NB101 recipe's steps, TNASP's attention and signs.
.PHONY: bench-ablations
bench-ablations: $(STAMP)
	mkdir -p $(R)
	$(BENCH) --space nb201 --predictor narformer --train-size 781 --set lambda_sr=0 --json $(R)/ablation_no_sr.json
	$(BENCH) --space nb201 --predictor narformer --train-size 781 --set pool=mean --json $(R)/ablation_mean_pool.json
	$(BENCH) --space nb201 --predictor narformer --train-size 781 --set augment=2 --json $(R)/ablation_with_twins.json
	$(BENCH) --space nb201 --predictor narformer --train-size 781 --set augment=2 --set lambda_ac=0 \
	  --json $(R)/ablation_twins_no_ac.json
	$(BENCH) --space nb201 --predictor narformer --train-size 781 --set attention=graph \
	  --json $(R)/ablation_graph_attention.json
	for s in 0 1 2; do \
	  $(BENCH) $(NB101) --predictor narformer --train-size 424 --seed $$s --set augment=2 --set lambda_ac=0 \
	    --json $(R)/narformer_twins_no_ac_nb101_424_s$$s.json; \
	  $(BENCH) $(NB101) --predictor narformer --train-size 424 --seed $$s --set augment=2 --set lambda_ac=0.05 \
	    --set weight_decay=0.05 --json $(R)/narformer_twins_ac005_nb101_424_s$$s.json; \
	done
	for s in 0 1; do \
	  $(BENCH) $(NB101) --predictor narformer --train-size 4236 --seed $$s --set augment=2 --set lambda_ac=0.05 \
	    --set weight_decay=0.05 --set epochs=150 --json $(R)/narformer_twins_ac005_nb101_4236_s$$s.json; \
	done
	$(BENCH) --space nb201 --predictor tnasp --train-size 781 --set attention=full --json $(R)/ablation_tnasp_full_nb201_781.json
	$(BENCH) $(NB101) --predictor tnasp --train-size 424 --set attention=full --json $(R)/ablation_tnasp_full_nb101_424.json
	$(BENCH) $(NB101) --predictor tnasp --train-size 424 --set attention=full --set pe_sign=eigh \
	  --json $(R)/ablation_tnasp_full_eigh_nb101_424.json

# Predictors on the OFA space (docs): DyNAS-T's measured table, 300 and 800 training archs, 3 seeds;
# OFA's own accuracy predictor scored on the same test archs beside each.
OFA_TABLE ?= ../shared/data/ofa_mbv3/ofa_mbv3w10_accuracy_dynast.csv.gz
.PHONY: bench-ofa-predictors
bench-ofa-predictors: $(STAMP)
	mkdir -p $(R)
	for s in 0 1 2; do for n in 300 800; do for p in narformer ridge mlp gin tnasp; do \
	  $(BENCH) --space ofa_mbv3 --data $(OFA_TABLE) --predictor $$p --train-size $$n --seed $$s \
	    --score-evaluator ofa-acc-predictor --json $(R)/$${p}_ofa_mbv3_$${n}_s$$s.json; \
	done; done; done

# Search quality (docs): 10 seeds x 100 evaluations on NB201, inline look-ups.
.PHONY: bench-search
bench-search: $(STAMP)
	$(PY) -m bench.search --space nb201 --strategies narformer,rea,random --budget 100 --seeds 10 \
	  --json results/search/nb201_budget100_seeds10.json

# What a predictor-guided search costs (docs/guide/search.md "Search cost"): refits of 300 epochs with full
# attention (the predictor's own defaults, the search's before), 100 epochs with full attention,
# and that warm-started.
BS_NARFORMER := $(PY) -m bench.search --space nb201 --strategies narformer --budget 100 --seeds 10
# Issue 31's figures: the asynchronous schedule and early stopping on NB201's table (simulated
# clock), and slot utilisation with 32 slots and heavy-tailed durations.
.PHONY: bench-search-async
bench-search-async: $(STAMP)
	$(PY) -m bench.search --space nb201 --strategies narformer --schedules rounds,async --stoppers none,asha,curve \
	  --budget 100 --seeds 10 --json results/search/nb201_async_budget100_seeds10.json
	$(PY) -m bench.search --space nb201 --strategies narformer --schedules async --stoppers none,curve,asha --slots 10 \
	  --budget 40 --set cost_budget=86900 --seeds 10 --json results/search/nb201_async_cost86900_seeds10.json
	$(PY) -m bench.search --space nb201 --strategies narformer --schedules async --stoppers none,curve --slots 10 \
	  --budget 40 --set cost_budget=86900 --set proxies=jacov,naswot,synflow --set proxies.cache=$(ZC_ALL) --seeds 10 \
	  --json results/search/nb201_async_proxyinputs_cost86900_seeds10.json
	$(PY) -m bench.search --space nb201 --strategies narformer --schedules async --stoppers none,curve --slots 10 \
	  --budget 40 --set cost_budget=86900 --set proxies=jacov,naswot,synflow --set proxies.cache=$(ZC_ALL) \
	  --set first_round=proxies --set proxies.pool=1000 --seeds 10 \
	  --json results/search/nb201_async_proxies_cost86900_seeds10.json
	for spread in 0.5 1.0; do \
	  $(PY) -m bench.search --space nb201 --strategies rea --schedules rounds,async --budget 1000 --batch 32 \
	    --init 32 --slots 32 --set evaluator.config.cost_spread=$$spread --seeds 10 \
	    --json results/search/nb201_slots32_spread$${spread}_seeds10.json || exit 1; \
	done

.PHONY: bench-search-cost
bench-search-cost: $(STAMP)
	$(BS_NARFORMER) --predictor-set epochs=300 --predictor-set attention=full \
	  --json results/search/nb201_budget100_seeds10_epochs300.json
	$(BS_NARFORMER) --predictor-set attention=full --json results/search/nb201_budget100_seeds10_full_attention.json
	$(BS_NARFORMER) --predictor-set attention=full --set strategy.config.warm_start=True \
	  --json results/search/nb201_budget100_seeds10_warm.json

# Constrained search on the OFA space with the surrogate (docs): 10 seeds x 100 evaluations, plus
# OFA's own evolution with the surrogate as fitness (the oracle row).
.PHONY: bench-ofa
bench-ofa: $(STAMP)
	$(PY) -m bench.search --space ofa_mbv3 --constraint 'macs<=400M' --strategies narformer,rea,random \
	  --budget 100 --seeds 10 --oracle --json results/search/ofa_mbv3_macs400M_budget100_seeds10.json
	$(PY) -m bench.search --space ofa_mbv3 --space-set width_mult=1.2 --space-set resolutions=160,176,192,208,224 \
	  --constraint 'latency_note10<=20' --strategies narformer,rea,random --budget 100 --seeds 10 --oracle \
	  --json results/search/ofa_mbv3w12_note10_20ms_budget100_seeds10.json

# arch2vec (issue 16): pretrain on every NB201 and NB101 cell (8 epochs, the paper's), then
# performance prediction with a random forest on the frozen embeddings at 250 / 600 / 1,000
# training archs over 10 seeds (RMSE and Pearson r overall and on archs above 80%).
A2V := runs/arch2vec
RA := results/arch2vec
# A random forest on the frozen embeddings of $(A2V)/<space>$(1).pt at 250 / 600 / 1,000 training
# archs over 10 seeds, on NB201 and NB101 (archs above 80% scored apart); JSONs $(RA)/$(2)_<space>_N_sS.json.
define rf_on_embeddings
	for n in 250 600 1000; do for s in 0 1 2 3 4 5 6 7 8 9; do \
	  $(BENCH) --space nb201 --predictor arch2vec --set model=$(A2V)/nb201$(1).pt --train-size $$n --val-size 0 \
	    --seed $$s --test-min 80 --json $(RA)/$(2)_nb201_$${n}_s$$s.json; \
	  $(BENCH) $(NB101) --predictor arch2vec --set model=$(A2V)/nb101$(1).pt --train-size $$n --val-size 0 \
	    --seed $$s --test-min 0.8 --json $(RA)/$(2)_nb101_$${n}_s$$s.json; \
	done; done
endef
.PHONY: bench-arch2vec
bench-arch2vec: $(STAMP)
	mkdir -p $(A2V) $(RA)
	$(PY) -m embeddings pretrain --space nb201 --epochs 8 --out $(A2V)/nb201.pt --quiet
	$(PY) -m embeddings info $(A2V)/nb201.pt > $(RA)/pretrain_nb201.json
	$(PY) -m embeddings pretrain --space nb101 --epochs 8 --out $(A2V)/nb101.pt --quiet
	$(PY) -m embeddings info $(A2V)/nb101.pt > $(RA)/pretrain_nb101.json
	for b in 100 300; do $(PY) -m bench.search --space nb201 --strategies reinforce,bo,rea,random --budget $$b \
	  --seeds 10 --set embedding=$(A2V)/nb201.pt --quiet --json results/search/nb201_latent_budget$${b}_seeds10.json; done
	$(call rf_on_embeddings,,rf)

# Test-regret curves on NB201 at 100 evaluations: REINFORCE on arch2vec's and on the IO model's
# embeddings (100 runs each, bench-io) and BO against the predictor-guided search (10 runs each, the
# JSONs of bench-arch2vec and bench-search; those predate bench.search's optimum.best_test, hence
# --optimum: NB201's best CIFAR-10 test accuracy).
.PHONY: bench-regret
bench-regret: $(STAMP)
	$(PY) -m bench.regret "arch2vec reinforce=results/search/nb201_reinforce_budget100_seeds100.json:reinforce" \
	  "IO model reinforce=results/search/nb201_io_reinforce_budget100_seeds100.json:reinforce" \
	  "arch2vec bo=results/search/nb201_latent_budget100_seeds10.json:bo" \
	  narformer=results/search/nb201_budget100_seeds10.json:narformer rea=results/search/nb201_budget100_seeds10.json:rea \
	  random=results/search/nb201_budget100_seeds10.json:random --optimum 94.373333 --log \
	  --out results/search/nb201_regret_budget100.png --json results/search/nb201_regret_budget100.json

# arch2vec's input-output extension (issue 16): IO datasets with the CPU preset on NB101 and NB201
# (CIFAR-10 batches: CIFAR10_DIR), the extended model on each, then the comparisons with plain
# arch2vec: random forests on the embeddings (as bench-arch2vec's) and REINFORCE on NB201.
# The network counts are scaled down from the paper's 608 + 77 to what builds in about an hour on this
# 2-core machine (about 27 s per network, 2 Ray trials at a time); an epoch of io-train is IO_PAIRS
# (network, image) pairs instead of every pair. The paper's size: IO_NETS_nb101="--train-nets 608 --val-nets 77".
CIFAR10_DIR ?= $(HOME)/.cache/narnas/cifar-10-batches-py
IO_NETS_nb101 ?= --train-nets 128 --val-nets 16
IO_NETS_nb201 ?= --train-nets 96 --val-nets 12
IO_PAIRS ?= 9600
IO_TRAIN = --epochs 30 --set pairs_per_epoch=$(IO_PAIRS) --set eval_pairs=5000 --quiet
define io_space
	$(PY) -m search.io_data build --space $(1) --preset io-cpu $(IO_NETS_$(1)) --data-dir $(CIFAR10_DIR) \
	  --out runs/io/$(1)
	$(PY) -m search.io_data info runs/io/$(1) > $(RA)/io_$(1)_info.json
	$(PY) -m embeddings io-train --data runs/io/$(1) $(IO_TRAIN) --out $(A2V)/$(1)_io.pt \
	  --json $(RA)/io_train_$(1).json
	$(PY) -m bench.io_curves $(RA)/io_train_$(1).json --arch2vec $(RA)/pretrain_$(1).json \
	  --out $(RA)/io_curves_$(1).png
endef
.PHONY: bench-io bench-io-small
bench-io: $(STAMP)
	mkdir -p $(A2V) $(RA)
	$(call io_space,nb101)
	$(call io_space,nb201)
	$(call rf_on_embeddings,_io,rf_io)
	for e in nb201 nb201_io; do $(PY) -m bench.search --space nb201 --strategies reinforce --budget 100 --seeds 100 \
	  --set embedding=$(A2V)/$$e.pt --quiet --json results/search/$${e}_reinforce_budget100_seeds100.json; done
bench-io-small: $(STAMP)
	$(PY) -m search.io_data build --space nb101 --preset io-cpu --train-nets 16 --val-nets 4 \
	  --data-dir $(CIFAR10_DIR) --out runs/io/nb101_small
	$(PY) -m search.io_data info runs/io/nb101_small > $(RA)/io_nb101_small_info.json
	$(PY) -m embeddings io-train --data runs/io/nb101_small --epochs 4 --archs 100000 --set eval_pairs=5000 \
	  --out $(A2V)/nb101_small_io.pt --json $(RA)/io_train_nb101_small.json --quiet
	$(PY) -m bench.io_curves $(RA)/io_train_nb101_small.json --arch2vec $(RA)/pretrain_nb101.json \
	  --out $(RA)/io_curves_nb101_small.png

# Latency of whole networks (issue 15). Build the dataset on an otherwise idle machine: its
# figures are timings (about 1.5-2 h for 13 families x 200 networks on this 2-core CPU).
LAT := runs/latency/cpu
RL := results/latency
LATBENCH := $(PY) -m bench.latency --data $(LAT) --quiet
.PHONY: bench-latency-data bench-latency bench-latency-fewshot
bench-latency-data: $(STAMP)
	$(PY) -m latency build --out $(LAT) --families all --per-family 200 --batch-size 1 --threads 1 \
	  --warmup 5 --repeats 15 --min-seconds 0.3 \
	  --json $(RL)/dataset_build.json
	cp $(LAT)/gt.txt $(LAT)/manifest.json $(LAT)/platforms.json $(RL)/

# The committed dataset's networks, redrawn and exported again (no timing: the table's latencies
# stand; about 16 min on 2 cores). A fresh checkout has the table but not the ONNX files.
$(LAT)/gt.txt: | $(STAMP)
	$(PY) -m latency restore --table $(RL)/gt.txt --out $(LAT)

# One JSON per (predictor, split or held-out family, seed); a JSON already there is kept, so a
# stopped bench continues where it was. PREDICTORS / SEEDS / LAT_FAMILIES narrow it (make bench-latency
# PREDICTORS=gnn SEEDS=0). The neural predictors train NEURAL_EPOCHS epochs (a CPU budget: about
# 8 min per NAR-Former fit and 3 per GNN fit on one core); run with OMP_NUM_THREADS=1, two at a time.
NEURAL_EPOCHS ?= 30
LAT_FAMILIES := alexnet darts efficientnet googlenet mnasnet mobilenetv2 mobilenetv3 nb201 ofa_mbv3 regnet \
  resnet squeezenet vgg
# Our NAR-Former variants beyond the supplement's token: narformer_cost adds cost codes (MACs, memory
# access), narformer_raw the layer's values as plain log2 numbers, narformer_costraw both, narformer_rawsum
# plain values and the layers' summed states at the head (a GNN-like sum readout), narformer_graphsum
# that with stage-1 attention along the network's edges, narformer_layersum plain values and latency as the
# sum of per-layer latencies each predicted from its layer's stage-1 state (pool=layer_sum), narformer_rawens
# plain values in an ensemble of 3 seeds (the mean of their log latencies; 3 times a fit), narformer_rawcount
# plain values and the layer count beside the static features; gnn_count is the GNN with the layer count.
# The default set is the docs' main table (narformer_raw: NAR-Former's chosen variant); the ablations:
# make bench-latency PREDICTORS="narformer narformer_cost narformer_costraw narformer_rawsum ..." SEEDS=0.
PREDICTORS ?= flops lut gnn narformer_raw
SEEDS ?= 0 1 2
bench-latency: $(STAMP) $(LAT)/gt.txt
	mkdir -p $(RL)
	for s in $(SEEDS); do \
	  for p in $(PREDICTORS); do \
	    case $$p in \
	      narformer|gnn) pred=$$p; set="--set epochs=$(NEURAL_EPOCHS)";; \
	      narformer_cost) pred=narformer; set="--set epochs=$(NEURAL_EPOCHS) --set cost_codes=true";; \
	      narformer_raw) pred=narformer; set="--set epochs=$(NEURAL_EPOCHS) --set raw_values=true";; \
	      narformer_costraw) pred=narformer; set="--set epochs=$(NEURAL_EPOCHS) --set cost_codes=true --set raw_values=true";; \
	      narformer_rawsum) pred=narformer; set="--set epochs=$(NEURAL_EPOCHS) --set raw_values=true --set sum_readout=true";; \
	      narformer_graphsum) pred=narformer; set="--set epochs=$(NEURAL_EPOCHS) --set raw_values=true --set sum_readout=true \
	        --set attention=graph";; \
	      narformer_rawcount) pred=narformer; set="--set epochs=$(NEURAL_EPOCHS) --set raw_values=true --set layer_count=true";; \
	      gnn_count) pred=gnn; set="--set epochs=$(NEURAL_EPOCHS) --set layer_count=true";; \
	      narformer_rawens) pred=narformer; set="--set epochs=$(NEURAL_EPOCHS) --set raw_values=true --set ensemble=3";; \
	      narformer_layersum) pred=narformer; set="--set epochs=$(NEURAL_EPOCHS) --set raw_values=true --set pool=layer_sum";; \
	      *) pred=$$p; set="";; \
	    esac; \
	    test -f $(RL)/$${p}_random_s$$s.json || \
	      $(LATBENCH) --split random --predictor $$pred --seed $$s $$set --json $(RL)/$${p}_random_s$$s.json \
	        > /dev/null || exit 1; \
	    for f in $(LAT_FAMILIES); do \
	      test -f $(RL)/$${p}_family_$${f}_s$$s.json || \
	        $(LATBENCH) --split family --test-family $$f --predictor $$pred --seed $$s $$set \
	          --json $(RL)/$${p}_family_$${f}_s$$s.json > /dev/null || exit 1; \
	    done; \
	  done; \
	done
	# NAR-Former's random split at twice the epochs (does the CPU budget cost it the Acc(10%) target?)
	test -f $(RL)/narformer_e60_random_s0.json || $(LATBENCH) --split random --predictor narformer --seed 0 \
	  --set epochs=60 --json $(RL)/narformer_e60_random_s0.json > /dev/null

bench-latency-fewshot: $(STAMP)
	mkdir -p $(RL)
	for s in 0 1 2; do \
	  $(PY) -m bench.latency_fewshot --data ../shared/data/nb201/nb201_latency_help.csv.gz --device all \
	    --seed $$s --json $(RL)/fewshot_nb201_help_s$$s.json > /dev/null; \
	done

# ImageNet evaluators on this CPU (docs/guide/imagenet.md): input throughput at 224 px (decoded
# in loader workers and by the training device), the supernet evaluation's images/s, and smoke
# searches end to end (ofa-supernet, imagenet smoke for darts and ofa_mbv3, 2-worker DDP).
IMAGENET_SAMPLE ?= ../shared/data/imagenet_sample
.PHONY: bench-imagenet
bench-imagenet: $(STAMP)
	mkdir -p results/imagenet
	for d in workers device; do \
	  $(PY) -m bench.train --what imagenet-input --decode $$d --data-dir $(IMAGENET_SAMPLE) --workers 2 \
	    --steps 14 --json results/imagenet/input_224_$$d.json; \
	done
	$(PY) -m bench.train --what ofa-eval --data-dir $(IMAGENET_SAMPLE) --workers 2 --json results/imagenet/ofa_eval_224.json
	$(PY) -m bench.imagenet --data-dir $(IMAGENET_SAMPLE) --json results/imagenet/smoke.json

# Zero-cost proxies on NB201 (docs/results.md "Zero-cost proxies"): each proxy's rank correlation on
# 1,000 cells, their table (archs, val, test, proxies), NAR-Former with and without the best proxies
# as inputs at 50 / 100 training archs (3 seeds), and the zero-cost strategy against REA. The minibatch
# comes from CIFAR-10's training images ($$NARNAS_CIFAR10_DIR, or --data-dir).
ZC := results/zero_cost
ZC_TABLE := runs/zc/nb201_sample1000_b64.csv
ZC_ALL := runs/zc/nb201_all.jsonl
# Every NB201 cell's proxies, one resumable job (kill it and run it again to go on): first the
# three the searches use (about 76 min on the 2 cores), then all twelve (about 3 h more).
.PHONY: bench-zero-cost-all
bench-zero-cost-all: $(STAMP)
	mkdir -p $(ZC) runs/zc
	$(PY) -m bench.zero_cost --space nb201 --all --proxies jacov,naswot,synflow --quiet --cache $(ZC_ALL) \
	  --json $(ZC)/nb201_all_vote.json
	$(PY) -m bench.zero_cost --space nb201 --all --quiet --cache $(ZC_ALL) --table runs/zc/nb201_all.csv \
	  --json $(ZC)/nb201_all.json

.PHONY: bench-zero-cost
bench-zero-cost: $(STAMP)
	mkdir -p $(ZC) runs/zc
	$(PY) -m bench.zero_cost --space nb201 --sample 1000 --quiet --table $(ZC_TABLE) --json $(ZC)/nb201_sample1000_b64.json
	for s in 0 1 2; do for n in 50 100; do \
	  $(BENCH) --space nb201 --predictor narformer --train-size $$n --seed $$s --data $(ZC_TABLE) \
	    --json $(ZC)/narformer_nb201_$${n}_s$$s.json; \
	  $(BENCH) --space nb201 --predictor narformer --train-size $$n --seed $$s --data $(ZC_TABLE) \
	    --graph-inputs jacov,naswot,synflow --json $(ZC)/narformer_proxies_nb201_$${n}_s$$s.json; \
	done; done
	$(PY) -m bench.search --space nb201 --strategies zero-cost,rea --budget 100 --seeds 10 --workers 1 \
	  --set proxies.names="('synflow',)" --json $(ZC)/search_nb201_synflow_budget100_seeds10.json
	$(PY) -m search.run --space nb201 --strategy random --budget 100 --seed 100 --out runs/zc/prior_random100_s100 \
	  --quiet --no-plots
	$(PY) -m bench.search --space nb201 --strategies narformer --budget 50 --seeds 5 \
	  --set strategy.prior=runs/zc/prior_random100_s100 --json $(ZC)/search_nb201_prior_random100_budget50_seeds5.json
	$(PY) -m bench.search --space nb201 --strategies narformer --budget 50 --seeds 5 \
	  --json $(ZC)/search_nb201_noprior_budget50_seeds5.json
	for n in 30 50; do $(PY) -m bench.search --space nb201 --strategies narformer --budget 50 --prior-budget $$n \
	  --seeds 10 --quiet --json $(ZC)/search_nb201_prior$${n}_budget50_seeds10.json; done
