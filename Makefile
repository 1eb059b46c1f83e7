# soundtok: install, demo, test, bench, man pages, training.
#
#   make demo          a fresh machine: venv, install, encode/decode a small demo library
#   make test          the fast test suite (make test-slow: the long checks; make test-gpu: CUDA checks)
#   make man           regenerate man/ from the CLI (tests fail while man/ is stale)
#   make completion    shell completion scripts in completions/
#   make corpus        build (or extend) the training corpus in corpus/
#   make train-codec   train the codec (resumable) and export the shipped weights
#   make train-embed   build the captioned token examples, train the audio tower, export it
#   make train-generate build the captioned token sequences, train the token language model, export it
#   make train-separate train the query-conditioned separation model, its voice network and sub-band speech mask, and the dereverberation mask; export them
#   make bench         codec quality/speed and retrieval tables (bench/results/*.json)

SHELL := /bin/bash
.SHELLFLAGS := -e -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.soundtok-installed
BENCH_STAMP := $(VENV)/.soundtok-bench-installed
CORPUS ?= corpus
CHECKPOINTS ?= checkpoints/codec
WEIGHTS := soundtok_cli/models/soundtok-codec-v1.safetensors
EMBED_CHECKPOINTS ?= checkpoints/embed
EMBED_DATA ?= checkpoints/embed-data
EMBED_WEIGHTS := soundtok_cli/models/soundtok-embed-v1.safetensors
EMBED_PROTOTYPES := soundtok_cli/models/soundtok-embed-v1-prototypes.safetensors
GENERATE_CHECKPOINTS ?= checkpoints/generate
GENERATE_DATA ?= checkpoints/generate-data
GENERATE_WEIGHTS := soundtok_cli/models/soundtok-generate-v2.safetensors
SEPARATE_CHECKPOINTS ?= checkpoints/separate
SUBBAND_CHECKPOINTS ?= checkpoints/subband
DEREVERB_CHECKPOINTS ?= checkpoints/dereverb
VOICE_CHECKPOINTS ?= checkpoints/separate-voice
SEPARATE_WEIGHTS := soundtok_cli/models/soundtok-separate-v3.safetensors
DEREVERB_WEIGHTS := soundtok_cli/models/soundtok-dereverb-v1.safetensors
DEMO ?= demo

# Debian packages the tests and the corpus builder use: "command-or-file package" pairs.
DEBIAN_TOOLS := sox:sox ffmpeg:ffmpeg opusenc:opus-tools espeak-ng:espeak-ng fluidsynth:fluidsynth \
	/usr/share/sounds/sf2/FluidR3_GM.sf2:fluid-soundfont-gm /usr/share/libmysofa/MIT_KEMAR_normal_pinna.sofa:libmysofa1

.PHONY: help install install-bench debian-tools demo test test-slow test-gpu bench man corpus train-codec train-embed train-generate train-separate \
	completion clean-demo

help:
	@sed -n 's/^#   //p' $(firstword $(MAKEFILE_LIST))

# ---------------------------------------------------------------------------------------------
# Install: a virtual environment with the package (editable) and the test tools. The stamp file
# makes a second `make test` skip it; editing pyproject.toml reinstalls.

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory debian-tools
	@test -x $(BIN)/python || { echo "creating $(VENV) with $(PYTHON) -m venv"; $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --progress-bar off -e '.[test]'
	@touch $@

install-bench: $(BENCH_STAMP)

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --progress-bar off -e '.[test,bench]'
	@touch $@

# Installs what is missing with apt-get when we are root; otherwise says what is missing (the
# tests that need a tool skip without it).
debian-tools:
	@missing=""; \
	for pair in $(DEBIAN_TOOLS); do \
	  tool=$${pair%%:*}; package=$${pair##*:}; \
	  if [ "$${tool#/}" != "$$tool" ]; then test -e "$$tool" || missing="$$missing $$package"; \
	  else command -v "$$tool" >/dev/null 2>&1 || missing="$$missing $$package"; fi; \
	done; \
	if [ ! -x $(BIN)/python ] && ! $(PYTHON) -c 'import ensurepip' >/dev/null 2>&1; then \
	  missing="$$missing python3-venv"; fi; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian packages:$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing \
	    || echo "warning: apt-get could not install$$missing; tests that need them will skip"; \
	else \
	  echo "note: not root (or no apt-get), not installing:$$missing; tests that need them will skip"; \
	fi

# ---------------------------------------------------------------------------------------------
# Demo: a small library made with soundtok's own synthesis, encoded through a pipe, described,
# and one sound decoded back. Everything lands in $(DEMO)/ (ignored by git).

export DEMO_SUMMARY
define DEMO_SUMMARY
import os, sys
import soundfile as sf
from soundtok_cli.io.store import summarize
from soundtok_cli.io.stream import read_batches

demo, one, back = sys.argv[1:4]
library, store = os.path.join(demo, "library"), os.path.join(demo, "library.zarr.zip")
files = [line.strip() for line in open(os.path.join(demo, "files.txt")) if line.strip()]
seconds = sum(sf.info(f).duration for f in files)
audio_bytes = sum(os.path.getsize(f) for f in files)
s = summarize(read_batches(store), store)
a, b = sf.info(one), sf.info(back)
kb = lambda n: f"{n / 1024:.0f} KB"
print()
print("What the demo did:")
print(f"  1. Made {len(files)} sounds with soundtok's own synthesis in {library}/")
print(f"     ({', '.join(os.path.basename(f) for f in files)}): {seconds:.1f} s of audio, {kb(audio_bytes)}.")
print(f"  2. Encoded them through a pipe into {store}: {s['items']} items (one per channel) from")
print(f"     {s['sources']} files, {s['levels']} levels of {s['codebook_size']} codes at {s['frame_rate']:g} frames/s"
      f" = {s['bitrate_kbps']:.2f} kbps, {kb(os.path.getsize(store))} in all.")
print(f"  3. Decoded {one} back through a pipe to {back}:")
print(f"     {b.channels} channel(s), {b.samplerate} Hz, {b.frames} samples"
      f" (the original: {a.channels}, {a.samplerate} Hz, {a.frames}).")
print(f"  4. Embedded the tokens (soundtok embed), indexed them in {demo}/index (soundtok index)")
print(f"     and asked for \"distant thunder\" (soundtok search): the ranked hits are above.")
print()
print("Try next:")
print(f"  soundtok search -i {demo}/index 'birds singing' --segments --format json")
print(f"  soundtok search -i {demo}/index --like {one}")
print(f"  soundtok decode {store} -o '{demo}/decoded/{{stem}}.wav'   # every file back")
print(f"  soundtok encode --bitrate 1.5 {one} | soundtok decode -o {demo}/low.wav")
print("  man -l man/soundtok.1")
endef

demo: install
	@rm -rf $(DEMO)/library $(DEMO)/library.zarr.zip $(DEMO)/decoded $(DEMO)/files.txt $(DEMO)/index
	@mkdir -p $(DEMO)/decoded
	@echo "== 1. A demo library: python -m soundtok_cli.data demo-library $(DEMO)/library"
	@$(BIN)/python -m soundtok_cli.data demo-library $(DEMO)/library > $(DEMO)/files.txt
	@sed 's/^/   /' $(DEMO)/files.txt
	@echo "== 2. Encode through a pipe: soundtok encode $(DEMO)/library | soundtok cat -o $(DEMO)/library.zarr.zip"
	@$(BIN)/soundtok encode $(DEMO)/library | $(BIN)/soundtok cat -o $(DEMO)/library.zarr.zip
	@echo "== 3. What the store holds: soundtok info $(DEMO)/library.zarr.zip"
	@$(BIN)/soundtok info $(DEMO)/library.zarr.zip
	@one=$$(head -n 1 $(DEMO)/files.txt); back=$(DEMO)/decoded/$$(basename "$${one%.*}").wav; \
	echo "== 4. One file there and back: soundtok encode $$one | soundtok decode -o $$back"; \
	$(BIN)/soundtok encode -q "$$one" | $(BIN)/soundtok decode -o "$$back"; \
	echo "== 5. Embed and index: soundtok embed $(DEMO)/library.zarr.zip | soundtok index -o $(DEMO)/index"; \
	$(BIN)/soundtok embed $(DEMO)/library.zarr.zip | $(BIN)/soundtok index -o $(DEMO)/index; \
	echo "== 6. Find a sound by describing it: soundtok search -i $(DEMO)/index \"distant thunder\""; \
	$(BIN)/soundtok search -i $(DEMO)/index "distant thunder" --format table; \
	$(BIN)/python -c "$$DEMO_SUMMARY" $(DEMO) "$$one" "$$back"

clean-demo:
	rm -rf $(DEMO)

# ---------------------------------------------------------------------------------------------
# Tests

test: install
	$(BIN)/pytest -q

test-slow: install
	$(BIN)/pytest -q -m slow

# The GPU agrees with the CPU (tokens, audio, embeddings, separation) and generation repeats with
# its seed there; skipped where there is no CUDA (CI has none).
test-gpu: install
	$(BIN)/pytest -q -rs tests/test_cuda.py tests/test_faiss_gpu.py

# ---------------------------------------------------------------------------------------------
# Documentation and shell completion

man: install
	$(BIN)/python -m soundtok_cli.manpages man

# typer prints each shell's script when _SOUNDTOK_COMPLETE=source_<shell> is set.
completion: install
	@mkdir -p completions
	_SOUNDTOK_COMPLETE=source_bash $(BIN)/soundtok | sed '/./,$$!d' > completions/soundtok.bash.tmp
	_SOUNDTOK_COMPLETE=source_zsh $(BIN)/soundtok | sed '/./,$$!d' > completions/_soundtok.tmp
	_SOUNDTOK_COMPLETE=source_fish $(BIN)/soundtok | sed '/./,$$!d' > completions/soundtok.fish.tmp
	@for f in soundtok.bash _soundtok soundtok.fish; do mv completions/$$f.tmp completions/$$f; done
	@echo "wrote completions/soundtok.bash, completions/_soundtok (zsh), completions/soundtok.fish"

# ---------------------------------------------------------------------------------------------
# Training data, training, benchmarks

# `make corpus` always runs the builder: it is resumable and extends what is there.
corpus: install
	$(BIN)/python -m soundtok_cli.data corpus --out $(CORPUS)

# Targets that need a corpus build one only when none has finished yet.
$(CORPUS)/READY: | $(STAMP)
	$(BIN)/python -m soundtok_cli.data corpus --out $(CORPUS)

train-codec: install $(CORPUS)/READY
	$(BIN)/python -m soundtok_cli.train.codec --corpus $(CORPUS) --checkpoints $(CHECKPOINTS)
	$(BIN)/python -m soundtok_cli.train.export $(CHECKPOINTS)/latest.pt $(WEIGHTS)

train-embed: install $(CORPUS)/READY
	$(BIN)/python -m soundtok_cli.train.embed build --corpus $(CORPUS) --out $(EMBED_DATA)
	$(BIN)/python -m soundtok_cli.train.embed train --data $(EMBED_DATA) --checkpoints $(EMBED_CHECKPOINTS)
	$(BIN)/python -m soundtok_cli.train.embed export --checkpoints $(EMBED_CHECKPOINTS) --out $(EMBED_WEIGHTS)
	$(BIN)/python -m soundtok_cli.train.embed prototypes --data $(EMBED_DATA) --checkpoints $(EMBED_CHECKPOINTS) \
		--out $(EMBED_PROTOTYPES)

train-generate: install $(CORPUS)/READY
	$(BIN)/python -m soundtok_cli.train.generate build --corpus $(CORPUS) --out $(GENERATE_DATA)
	$(BIN)/python -m soundtok_cli.train.generate train --data $(GENERATE_DATA) --checkpoints $(GENERATE_CHECKPOINTS)
	$(BIN)/python -m soundtok_cli.train.generate export --checkpoints $(GENERATE_CHECKPOINTS) --out $(GENERATE_WEIGHTS)

train-separate: install $(CORPUS)/READY
	$(BIN)/python -m soundtok_cli.train.separate train --corpus $(CORPUS) --checkpoints $(SEPARATE_CHECKPOINTS)
	$(BIN)/python -m soundtok_cli.train.separate export --corpus $(CORPUS) --checkpoints $(SEPARATE_CHECKPOINTS) --out $(SEPARATE_WEIGHTS)
	$(BIN)/python -m soundtok_cli.train.separate train --corpus $(CORPUS) --checkpoints $(VOICE_CHECKPOINTS) \
		--init $(SEPARATE_WEIGHTS) --steps 1600 --lr 1e-3 --threads 1 --proximity 0.5
	$(BIN)/python -m soundtok_cli.train.separate export-voice --checkpoints $(VOICE_CHECKPOINTS) \
		--separator $(SEPARATE_WEIGHTS) --out $(SEPARATE_WEIGHTS)
	$(BIN)/python -m soundtok_cli.train.subband train --corpus $(CORPUS) --cache $(SEPARATE_CHECKPOINTS) --checkpoints $(SUBBAND_CHECKPOINTS)
	$(BIN)/python -m soundtok_cli.train.subband export --checkpoint $(SUBBAND_CHECKPOINTS)/last.pt --separator $(SEPARATE_WEIGHTS) --out $(SEPARATE_WEIGHTS)
	$(BIN)/python -m soundtok_cli.train.dereverb train --corpus $(CORPUS) --cache $(SEPARATE_CHECKPOINTS) --checkpoints $(DEREVERB_CHECKPOINTS)
	$(BIN)/python -m soundtok_cli.train.dereverb export --checkpoint $(DEREVERB_CHECKPOINTS)/last.pt --out $(DEREVERB_WEIGHTS)

bench: install-bench $(CORPUS)/READY
	$(BIN)/python -m bench.codec_quality --clips $(CORPUS)/heldout/clips
	$(BIN)/python -m bench.codec_speed
	$(BIN)/python -m bench.retrieval --corpus $(CORPUS)
	$(BIN)/python -m bench.search_speed
	$(BIN)/python -m bench.generate
	$(BIN)/python -m bench.separation --heldout $(CORPUS)/heldout
