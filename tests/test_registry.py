"""Built-in models: identity, checksums, and refusing stores made with other weights."""

import json
import subprocess
import sys

import pytest

from soundtok_cli.errors import InputError, UsageError
from soundtok_cli.models.registry import BUILT_IN, codec_for_store, describe_all, find, load_codec, sha256


def test_every_built_in_model_has_weights_and_a_card():
    for entry in BUILT_IN:
        assert sha256(entry.path()) == describe_all()[BUILT_IN.index(entry)]["sha256"]
        card = entry.path().replace(entry.weights, entry.card)
        assert "## Measured" in open(card).read()


def test_unknown_model_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown model 'nope'"):
        find("nope")


def test_store_from_other_weights_is_refused_naming_both_versions():
    codec = load_codec(device="cpu")
    attrs = {"kind": "tokens", "codec": dict(codec.describe(8), version="0", weights_sha256="ab" * 32)}
    with pytest.raises(InputError) as error:
        codec_for_store(attrs, "cpu", "old.zarr")
    message = str(error.value)
    assert message.startswith("old.zarr: made with codec soundtok-codec 0 (weights abababababab, 8 levels)")
    assert f"this soundtok has codec soundtok-codec {codec.version} (weights {codec.weights_sha256[:12]}, 8 levels)" in message
    attrs["codec"]["name"] = "encodec_24khz"
    with pytest.raises(InputError, match="which this soundtok does not have"):
        codec_for_store(attrs, "cpu", "x.zarr")


def test_models_command_lists_checksums():
    out = subprocess.run([sys.executable, "-m", "soundtok_cli.app", "models", "--format", "json"],
                         capture_output=True, text=True, check=True).stdout
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["name"] for r in rows] == [e.name for e in BUILT_IN]
    assert all(len(r["sha256"]) == 64 for r in rows)
