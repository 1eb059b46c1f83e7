"""What the separation model knows: the concepts a query is grounded against.

A query is embedded in the joint space by the text tower; it is grounded when it is close to
something the model was trained to pull out (a caption, a coarser caption like "dog", or one of
the speech and crowd phrases). A query far from all of them ("quarterly report") would make the
model guess, so `separate` refuses it and names the nearest concepts instead.
"""

from __future__ import annotations

import re

import numpy as np

# Cosine similarity in the all-MiniLM-L6-v2 space to the nearest concept. Calibrated on v1's
# concepts (tests/test_separate_model.py checks both sides): below GROUNDED a query is refused
# ("quarterly tax report" 0.18, "asdfgh qwerty" 0.41, "a baby crying" 0.40: no baby was ever
# heard); below LOOSE it is accepted with a note naming what it was matched to ("traffic" 0.44 ->
# racing-car road noise, "rain on a tin roof" 0.54 -> rain). Sound words well covered by the
# training data score 0.6-1.0. Short abstract words can pass ("yesterday" 0.60 -> "day"): the
# text space alone cannot tell them from sound words; the note shows the user what was matched.
GROUNDED = 0.42
LOOSE = 0.6
MAX_WORDS = 8
# The phrases the model was trained with for voices and for crowds (beside the training captions).
CROWD_QUERIES = ["crowd chatter", "a crowd of people talking", "babble of voices", "people talking in a crowded room",
                 "a busy restaurant", "background chatter", "crowd noise"]
SPEECH_QUERIES = ["speech", "voice", "a person speaking", "dialogue", "someone talking", "vocals", "the voice",
                  "spoken words", "a man speaking", "a woman speaking", "narration"]
# Music captions from the training data: the text space puts "music" nearer "vocals" (0.62) than
# LOOSE, so without them a query for music would be kept as a voice is (separate/speech.py)
MUSIC_PHRASES = ["music", "a piece of music", "a song"]
_QUOTED = re.compile(r':?\s*"[^"]*"')


def concept_words(captions: list[str], coarser: list[list[str]], phrases: list[str]) -> list[str]:
    """What the model was trained to pull out, as phrases worth naming to a user: each training
    caption without what it quotes ('a voice speaking Polish'), the coarser captions of two words
    or more ('thunder, far away'; single keywords cut from file names, like 'day' or 'power',
    are not sounds), and the speech and crowd phrases; sorted, no duplicates."""
    texts = [_QUOTED.sub("", c).strip(" ,:") for c in captions]
    texts += [g for options in coarser for g in options if len(g.split()) >= 2]
    texts += phrases
    return sorted({" ".join(t.lower().split()) for t in texts if t.strip() and len(t.split()) <= MAX_WORDS})


def readable(names: list[str], vocabulary: set[str]) -> np.ndarray:
    """Which concept names are worth showing a user who asked for something the model does not
    know: those whose every word is a whole word of the text tower's vocabulary, or one with a
    plural, verb or adjective ending ('chirping', 'crickets'). Many concepts come from game file
    names ('proxmine wstbexpl', 'powerplant pplnt'); a refusal that names them tells the user
    nothing. On the shipped table this hides 1,143 of 2,363 names, real ones among them ('croaky',
    'afterburner'): for a hint, the cheaper mistake. Grounding still uses every concept."""
    def known(word: str) -> bool:
        if word in vocabulary:
            return True
        for ending in ("s", "es", "ies", "ing", "ed", "y", "er", "ly"):
            stem = word[: -len(ending)]
            if word.endswith(ending) and len(stem) >= 3 and (
                    stem in vocabulary or stem + "e" in vocabulary or stem + "y" in vocabulary
                    or (stem[-1] == stem[-2] and stem[:-1] in vocabulary)):  # 'humming'
                return True
        return False

    shown = np.array([all(known(w) for w in re.findall(r"[a-z]+", name.lower())) for name in names], bool)
    return shown if shown.any() else np.ones(len(names), bool)


def nearest(query: np.ndarray, vectors: np.ndarray, names: list[str], k: int = 3) -> list[tuple[str, float]]:
    """The k concepts closest to the query vector, with their cosine similarities, best first;
    concepts that only differ by an article or a plural are not repeated."""
    scores = vectors @ query
    out: list[tuple[str, float]] = []
    seen: set[str] = set()
    for i in np.argsort(-scores):
        key = _key(names[i])
        if key in seen:
            continue
        seen.add(key)
        out.append((names[i], float(scores[i])))
        if len(out) == k:
            break
    return out


def _key(name: str) -> str:
    words = [w for w in name.split() if w not in ("a", "an", "the")]
    return " ".join(w[:-1] if w.endswith("s") and len(w) > 3 else w for w in words)
