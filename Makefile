# One-command set-up on a fresh machine. torch is pinned first so pip takes the local CPU
# wheel instead of pulling CUDA packages; the project itself only asks for torch>=2.3.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA ?= ../shared/data/multi30k
TORCH_PIN ?= torch==2.13.0
DEMO_STEPS ?= 400

.PHONY: install test lint serve demo train model models langid eval bench load clean

$(BIN)/nmt-train: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH_PIN)"
	$(BIN)/pip install -q -e ".[dev]"
	@touch $@

install: $(BIN)/nmt-train  ## virtual environment with the project and its dev tools

lint: install  ## ruff lint and format check, mypy type check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy nmt training service jobs benchmarks

test: lint  ## lint, then the whole test suite (CPU, a few minutes)
	$(BIN)/python -m pytest

serve: install  ## serve every model under models/ (the shipped de-en model) on http://localhost:8000
	$(BIN)/nmt-serve --models models --port 8000

demo: install  ## short German->English training run on Multi30k (small model, ~10 min on 2 cores), then its test BLEU
	$(BIN)/nmt-train --config configs/multi30k_de_en.yaml train.out_dir=runs/demo \
	    data.train_src=$(DATA)/train.de data.train_tgt=$(DATA)/train.en \
	    data.valid_src=$(DATA)/val.de data.valid_tgt=$(DATA)/val.en data.valid_max_sentences=300 \
	    model.emb_size=128 model.enc_hidden=128 model.dec_hidden=256 model.enc_layers=1 model.dec_layers=1 \
	    train.max_steps=$(DEMO_STEPS) train.valid_every=200 train.lr=0.002
	$(BIN)/nmt-eval --model runs/demo/best --src $(DATA)/test_2016_flickr.de --ref $(DATA)/test_2016_flickr.en

train: install  ## the reference recipe (configs/multi30k_de_en.yaml); run again to resume
	$(BIN)/nmt-train --config configs/multi30k_de_en.yaml \
	    data.train_src=$(DATA)/train.de data.train_tgt=$(DATA)/train.en \
	    data.valid_src=$(DATA)/val.de data.valid_tgt=$(DATA)/val.en

model: install  ## reproduce models/de-en: the reference recipe for 2,000 steps, the last 3 checkpoints averaged, int8 storage, scored
	$(BIN)/nmt-train --config configs/multi30k_de_en.yaml \
	    data.train_src=$(DATA)/train.de data.train_tgt=$(DATA)/train.en \
	    data.valid_src=$(DATA)/val.de data.valid_tgt=$(DATA)/val.en \
	    train.max_steps=2000 train.valid_every=250
	$(BIN)/nmt-average $(addprefix runs/multi30k_de_en/checkpoints/step_0000,1500 1750 2000) \
	    --output models/de-en --dtype int8 --model-card models/de-en/MODEL_CARD.md
	$(MAKE) --no-print-directory score-de-en

DIRECTIONS := en-de en-fr fr-en en-cs cs-en
SCORE_SETS := test_2016_flickr test_2017_flickr

models: $(addprefix model-,$(DIRECTIONS))  ## reproduce every other shipped direction (hours on 2 CPU cores, minutes on a GPU)

model-%: install  ## reproduce models/SRC-TGT, e.g. make model-en-fr: its recipe, the last 3 checkpoints averaged (int8), scored
	$(BIN)/nmt-train --config configs/multi30k_$(subst -,_,$*).yaml
	$(BIN)/nmt-average $$(ls -d runs/multi30k_$(subst -,_,$*)/checkpoints/step_* | tail -3) --output models/$* \
	    --dtype int8 $(if $(wildcard models/$*/MODEL_CARD.md),--model-card models/$*/MODEL_CARD.md)
	$(MAKE) --no-print-directory score-$*
	$(BIN)/python -m training.model_card models/$*

score-%: install  ## beam-5 BLEU/chrF of models/SRC-TGT on the test sets that exist, recorded in its config.json
	@src=$(word 1,$(subst -, ,$*)); tgt=$(word 2,$(subst -, ,$*)); \
	for set in $(SCORE_SETS); do \
	    if [ -f $(DATA)/$$set.$$src ] && [ -f $(DATA)/$$set.$$tgt ]; then \
	        echo "$* $$set:"; \
	        $(BIN)/nmt-eval --model models/$* --src $(DATA)/$$set.$$src --ref $(DATA)/$$set.$$tgt --beam-size 5 --record $$set; \
	    fi; \
	done

langid: install  ## rebuild the language identifier's profiles (nmt/langid.json) from the training data
	$(BIN)/python -m training.langid --out nmt/langid.json $(foreach l,en de fr cs,$(DATA)/train.$(l))

eval: install  ## greedy BLEU/chrF of the reference run on test_2016_flickr
	$(BIN)/nmt-eval --model runs/multi30k_de_en/best --src $(DATA)/test_2016_flickr.de --ref $(DATA)/test_2016_flickr.en

bench: install  ## training throughput and decoding speed of the reference architecture (CPU)
	$(BIN)/python benchmarks/train_speed.py
	$(BIN)/python benchmarks/decode_speed.py

load: install  ## service throughput and latency at 1-128 clients and under a mixed load, batched vs unbatched
	$(BIN)/python benchmarks/load.py --models models/de-en

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
