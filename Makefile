# One-command set-up on a fresh machine. torch is pinned first so pip takes the local CPU
# wheel instead of pulling CUDA packages; the project itself only asks for torch>=2.3.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA ?= ../shared/data/multi30k
TORCH_PIN ?= torch==2.13.0
DEMO_STEPS ?= 400

.PHONY: install test lint serve demo train model eval bench load clean

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

model: install  ## reproduce models/de-en: the reference recipe for 2,000 steps, the last 3 checkpoints averaged, fp16
	$(BIN)/nmt-train --config configs/multi30k_de_en.yaml \
	    data.train_src=$(DATA)/train.de data.train_tgt=$(DATA)/train.en \
	    data.valid_src=$(DATA)/val.de data.valid_tgt=$(DATA)/val.en \
	    train.max_steps=2000 train.valid_every=250
	$(BIN)/nmt-average $(addprefix runs/multi30k_de_en/checkpoints/step_0000,1500 1750 2000) \
	    --output models/de-en --dtype fp16 --model-card models/de-en/MODEL_CARD.md

eval: install  ## greedy BLEU/chrF of the reference run on test_2016_flickr
	$(BIN)/nmt-eval --model runs/multi30k_de_en/best --src $(DATA)/test_2016_flickr.de --ref $(DATA)/test_2016_flickr.en

bench: install  ## training throughput and decoding speed of the reference architecture (CPU)
	$(BIN)/python benchmarks/train_speed.py
	$(BIN)/python benchmarks/decode_speed.py

load: install  ## service throughput and latency at 1-128 clients, batching on vs off
	$(BIN)/python benchmarks/load.py --models models

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
