"""Training corpus builder (``python -m soundtok_cli.data corpus``).

Sources (see DESIGN.md "Training data"): the recordings listed in the training manifest (Debian
packages, downloaded with ``apt-get download`` and unpacked with ``dpkg -x``), espeak-ng speech,
FluidSynth music rendered from random MIDI files, and the procedural sounds of ``synth.py``.

Output layout (the training code depends on it)::

    OUT/{train,heldout}/shard-XXXX.npy   int16 mono 48 kHz, many clips concatenated (~256 MB)
    OUT/{train,heldout}/index.tsv        shard, offset, length, kind, source, caption
    OUT/heldout/clips/kind-NNN.wav       2-10 s benchmark clips (20 per kind)
    OUT/done.txt                         finished units (packages, generated batches)

The builder is resumable: finished units are listed in ``done.txt`` and clips whose ``source``
already appears in an index are skipped, so an interrupted run can simply be started again.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import hashlib
import io
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import OrderedDict, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from . import captions as captions_mod
from . import synth

SAMPLE_RATE = 48000
# Packages that are never trained on: their audio is the held-out set (kind in the comment).
HELDOUT_PACKAGES = ("lincity-ng-data", "xmoto-data", "ktuberling-data")  # sfx, music, speech
SHARD_BYTES = 256 * 1024 * 1024
HELDOUT_CLIPS_PER_KIND = 20
HELDOUT_CLIP_MIN_S, HELDOUT_CLIP_MAX_S = 2.0, 10.0
SILENCE_PEAK = 10 ** (-60 / 20)   # peak below -60 dBFS: silent
SILENCE_RMS = 10 ** (-70 / 20)    # RMS below -70 dBFS: near-silent
ARCHIVE_SUFFIXES = (".zip", ".wz", ".pk3")
GEN_UNIT_S = 300.0  # generated audio is made in units of 5 minutes (one line in done.txt each)
SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MANIFEST = REPO_ROOT / ".." / "shared" / "data" / "train_manifest.tsv"


def log(msg: str) -> None:
    print(f"[corpus {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def split_of(pkg: str) -> str:
    return "heldout" if pkg in HELDOUT_PACKAGES else "train"


# --------------------------------------------------------------------------------------------
# manifest and packages


@dataclass(frozen=True)
class Row:
    pkg: str
    path: str
    duration_s: float
    kind: str
    label_text: str


def read_manifest(path: str | Path) -> "OrderedDict[str, list[Row]]":
    by_pkg: OrderedDict[str, list[Row]] = OrderedDict()
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        for r in reader:
            row = Row(r["pkg"], r["path"], float(r["duration_s"] or 0), r["kind"], r["label_text"] or "")
            by_pkg.setdefault(row.pkg, []).append(row)
    return by_pkg


def find_deb(pkg: str, cache_dir: Path) -> Path | None:
    for p in sorted(cache_dir.glob(f"{pkg}_*.deb")):
        return p
    return None


def download_deb(pkg: str, cache_dir: Path) -> Path:
    cache_dir.mkdir(parents=True, exist_ok=True)
    deb = find_deb(pkg, cache_dir)
    if deb is not None:
        return deb
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=f".dl-{pkg}-") as tmp:
        res = subprocess.run(["apt-get", "download", pkg], cwd=tmp, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"apt-get download {pkg} failed: {res.stderr.strip()[-500:]}")
        debs = list(Path(tmp).glob("*.deb"))
        if not debs:
            raise RuntimeError(f"apt-get download {pkg} produced no .deb")
        target = cache_dir / debs[0].name
        os.replace(debs[0], target)
    return target


def extract_deb(pkg: str, deb: Path, pkgs_dir: Path) -> Path:
    root = pkgs_dir / pkg
    marker = pkgs_dir / f".{pkg}.extracted"
    if marker.exists() and root.is_dir():
        return root
    tmp = pkgs_dir / f".{pkg}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    subprocess.run(["dpkg", "-x", str(deb), str(tmp)], check=True, capture_output=True)
    if root.exists():
        shutil.rmtree(root)
    os.replace(tmp, root)
    marker.write_text(deb.name + "\n")
    return root


def prepare_package(pkg: str, cache_dir: Path, pkgs_dir: Path) -> Path:
    """Download (unless cached) and unpack one package; return its root directory."""
    root = pkgs_dir / pkg
    if (pkgs_dir / f".{pkg}.extracted").exists() and root.is_dir():
        return root
    deb = download_deb(pkg, cache_dir)
    return extract_deb(pkg, deb, pkgs_dir)


def split_archive_path(path: str) -> tuple[str, str | None]:
    """``a/public.zip.d/audio/x.ogg`` -> (``a/public.zip``, ``audio/x.ogg``); plain paths -> (path, None)."""
    parts = path.split("/")
    for i, part in enumerate(parts[:-1]):
        if part.endswith(".d") and part[:-2].lower().endswith(ARCHIVE_SUFFIXES):
            return "/".join(parts[:i] + [part[:-2]]), "/".join(parts[i + 1:])
    return path, None


_ZIP_CACHE: dict[str, zipfile.ZipFile] = {}


def read_member(root: Path, path: str) -> bytes:
    outer, inner = split_archive_path(path)
    if inner is None:
        return (root / outer).read_bytes()
    key = str(root / outer)
    zf = _ZIP_CACHE.get(key)
    if zf is None:
        if len(_ZIP_CACHE) > 8:
            for z in _ZIP_CACHE.values():
                z.close()
            _ZIP_CACHE.clear()
        zf = _ZIP_CACHE[key] = zipfile.ZipFile(key)
    try:
        return zf.read(inner)
    except KeyError:
        # some archives differ in case from the manifest
        lower = inner.lower()
        for name in zf.namelist():
            if name.lower() == lower:
                return zf.read(name)
        raise


# --------------------------------------------------------------------------------------------
# decoding


def decode_bytes(data: bytes, name: str = "") -> tuple[np.ndarray, int]:
    """Decode to float32 (frames, channels) with soundfile, falling back to ffmpeg."""
    import soundfile as sf

    try:
        x, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
        if x.size:
            return x, int(sr)
    except Exception:  # noqa: BLE001 - libsndfile refuses many odd files; ffmpeg gets a try
        pass
    return decode_ffmpeg(data)


def decode_ffmpeg(data: bytes) -> tuple[np.ndarray, int]:
    if shutil.which("ffmpeg") is None:
        raise RuntimeError("cannot decode: libsndfile failed and ffmpeg is not installed")
    res = subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-i", "pipe:0", "-f", "f32le", "-ac", "2",
         "-ar", str(SAMPLE_RATE), "pipe:1"], input=data, capture_output=True)
    if res.returncode != 0 or not res.stdout:
        raise RuntimeError(f"ffmpeg could not decode: {res.stderr.decode(errors='replace')[-300:]}")
    x = np.frombuffer(res.stdout, dtype="<f4").reshape(-1, 2)
    return x.copy(), SAMPLE_RATE


def to_mono(x: np.ndarray) -> np.ndarray:
    """Mean of channels, unless the channels nearly cancel (anti-phase): then channel 0."""
    if x.ndim == 1:
        return x.astype(np.float32)
    if x.shape[1] == 1:
        return x[:, 0].astype(np.float32)
    mean = x.mean(axis=1)
    ch_rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
    mean_rms = float(np.sqrt(np.mean(mean.astype(np.float64) ** 2)))
    if ch_rms > 0 and mean_rms < 0.25 * ch_rms:
        return x[:, 0].astype(np.float32)
    return mean.astype(np.float32)


def resample(x: np.ndarray, sr: int, target: int = SAMPLE_RATE) -> np.ndarray:
    if sr == target:
        return x.astype(np.float32)
    import soxr

    return soxr.resample(x.astype(np.float32), sr, target, quality="HQ").astype(np.float32)


def is_silent(x: np.ndarray) -> bool:
    if len(x) == 0:
        return True
    peak = float(np.max(np.abs(x)))
    rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
    return peak < SILENCE_PEAK or rms < SILENCE_RMS


def to_int16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * 32767.0), -32768, 32767).astype(np.int16)


def load_clip(data: bytes, name: str = "") -> np.ndarray | None:
    """Bytes of an audio file -> float32 mono 48 kHz, or None when (near-)silent."""
    x, sr = decode_bytes(data, name)
    y = resample(to_mono(x), sr)
    y = np.nan_to_num(y)
    return None if is_silent(y) else y


# --------------------------------------------------------------------------------------------
# output


def _clean_field(s: str) -> str:
    return re.sub(r"[\t\r\n]+", " ", s).strip()


class ShardWriter:
    """Appends clips to ``OUT/split/shard-XXXX.npy`` + ``index.tsv``, written atomically."""

    HEADER = "shard\toffset\tlength\tkind\tsource\tcaption\n"

    def __init__(self, split_dir: Path, shard_bytes: int = SHARD_BYTES):
        self.dir = Path(split_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.shard_samples = max(1, shard_bytes // 2)
        self.index_path = self.dir / "index.tsv"
        if not self.index_path.exists():
            self.index_path.write_text(self.HEADER)
        nums = [int(m.group(1)) for p in self.dir.glob("shard-*.npy")
                if (m := re.fullmatch(r"shard-(\d+)\.npy", p.name))]
        self.next_id = max(nums) + 1 if nums else 0
        self.buf: list[np.ndarray] = []
        self.rows: list[tuple[int, int, str, str, str]] = []
        self.n = 0
        self.added = 0     # clips added by this writer
        self.flushed = 0   # clips of those that are on disk

    def add(self, x: np.ndarray, kind: str, source: str, caption: str) -> None:
        x = np.asarray(x)
        if x.dtype != np.int16:
            x = to_int16(x)
        self.buf.append(x)
        self.rows.append((self.n, len(x), kind, _clean_field(source), _clean_field(caption)))
        self.n += len(x)
        self.added += 1
        if self.n >= self.shard_samples:
            self.flush()

    def flush(self) -> None:
        if self.n == 0:
            return
        name = f"shard-{self.next_id:04d}.npy"
        tmp = self.dir / f".{name}.tmp"
        with open(tmp, "wb") as fh:
            np.save(fh, np.concatenate(self.buf))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.dir / name)
        lines = "".join(f"{name}\t{o}\t{n}\t{k}\t{s}\t{c}\n" for o, n, k, s, c in self.rows)
        with open(self.index_path, "a", encoding="utf-8") as fh:
            fh.write(lines)
        self.next_id += 1
        self.flushed += len(self.rows)
        self.buf, self.rows, self.n = [], [], 0


def read_index(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))


def indexed_sources(out: Path) -> set[str]:
    return {r["source"] for split in ("train", "heldout") for r in read_index(out / split / "index.tsv")}


def read_done(out: Path) -> set[str]:
    p = out / "done.txt"
    return set(p.read_text().split()) if p.exists() else set()


def mark_done(out: Path, unit: str) -> None:
    with open(out / "done.txt", "a") as fh:
        fh.write(unit + "\n")


class DoneLog:
    """Marks a unit done only once all of its clips are in shards on disk."""

    def __init__(self, out: Path, writers: dict[str, "ShardWriter"]):
        self.out, self.writers = out, writers
        self.pending: list[tuple[str, dict[str, int]]] = []

    def finished(self, unit: str) -> None:
        self.pending.append((unit, {s: w.added for s, w in self.writers.items()}))
        self.sync()

    def sync(self) -> None:
        keep = []
        for unit, need in self.pending:
            if all(self.writers[s].flushed >= n for s, n in need.items()):
                mark_done(self.out, unit)
            else:
                keep.append((unit, need))
        self.pending = keep


def write_wav(path: Path, x: np.ndarray, sr: int = SAMPLE_RATE) -> None:
    import soundfile as sf

    tmp = path.with_name(f".{path.name}.tmp")
    sf.write(str(tmp), x, sr, subtype="PCM_16", format="WAV")
    os.replace(tmp, path)


def stats(out: Path) -> dict[str, dict[str, float]]:
    """Hours per split and kind, from the indexes."""
    res: dict[str, dict[str, float]] = {}
    for split in ("train", "heldout"):
        per: dict[str, float] = defaultdict(float)
        for r in read_index(Path(out) / split / "index.tsv"):
            per[r["kind"]] += int(r["length"]) / SAMPLE_RATE / 3600
        res[split] = dict(sorted(per.items()))
    return res


def format_stats(st: dict[str, dict[str, float]]) -> str:
    lines = []
    for split, per in st.items():
        total = sum(per.values())
        kinds = ", ".join(f"{k} {v:.2f} h" for k, v in per.items())
        lines.append(f"{split}: {total:.2f} h ({kinds})")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# workers (run in a process pool; return int16 clips)


def _real_task(args) -> tuple[Row, np.ndarray | None, str | None]:
    root, row = args
    try:
        y = load_clip(read_member(Path(root), row.path), row.path)
        return row, (None if y is None else to_int16(y)), None
    except Exception as e:  # noqa: BLE001 - one bad file must not stop the corpus
        return row, None, f"{type(e).__name__}: {e}"


def _gen_task(args) -> tuple[str, list[tuple[np.ndarray, str, str, str]], str | None]:
    kind, unit, seed, seconds = args
    try:
        fn = {"speech": espeak_batch, "music": fluidsynth_batch, "synth": synth_batch}[kind]
        clips = fn(np.random.default_rng(seed), seconds, unit)
        return unit, [(to_int16(x), k, s, c) for x, k, s, c in clips], None
    except Exception as e:  # noqa: BLE001
        return unit, [], f"{type(e).__name__}: {e}"


def synth_batch(rng: np.random.Generator, seconds: float, unit: str) -> list[tuple[np.ndarray, str, str, str]]:
    clips, total, i = [], 0.0, 0
    while total < seconds:
        dur = float(rng.uniform(2.0, 10.0))
        x, cap = synth.random_sound(rng, SAMPLE_RATE, dur)
        if not is_silent(x):
            clips.append((x, "synth", f"synth:{unit}:{i:04d}", cap))
            total += dur
        i += 1
    return clips


def _seed(unit: str) -> int:
    return int.from_bytes(hashlib.sha256(unit.encode()).digest()[:8], "little")


# --------------------------------------------------------------------------------------------
# espeak-ng speech

WORDS = {
    "en": {
        "det": "the a this that every one my your our their".split(),
        "adj": ("red small old quiet bright heavy cold warm green tired happy strange little big "
                "early late wooden empty loud soft").split(),
        "noun": ("dog cat river window train teacher garden bottle city morning letter house road "
                 "child doctor storm bird kitchen machine song farmer boat mountain computer").split(),
        "verb": ("sees finds opens carries watches follows paints remembers builds leaves needs "
                 "moves breaks hears likes cleans").split(),
        "adv": "slowly today again outside quickly tomorrow carefully never always".split(),
    },
    "de": "der die das Hund Katze Haus Fenster Stadt Wasser Baum Morgen Abend groß klein alt neu schnell "
          "langsam sieht findet öffnet trägt baut hört heute wieder draußen immer Zug Straße Kind Brot".split(),
    "fr": "le la les un une chien chat maison fenêtre ville eau arbre matin soir grand petit vieux nouveau "
          "voit trouve ouvre porte construit entend aujourd'hui encore dehors toujours train rue enfant pain".split(),
    "es": "el la los una perro gato casa ventana ciudad agua árbol mañana noche grande pequeño viejo nuevo "
          "ve encuentra abre lleva construye oye hoy otra vez fuera siempre tren calle niño pan".split(),
    "it": "il la lo una cane gatto casa finestra città acqua albero mattina sera grande piccolo vecchio nuovo "
          "vede trova apre porta costruisce sente oggi ancora fuori sempre treno strada bambino pane".split(),
    "nl": "de het een hond kat huis raam stad water boom ochtend avond groot klein oud nieuw ziet vindt "
          "opent draagt bouwt hoort vandaag weer buiten altijd trein straat kind brood".split(),
    "pt": "o a os uma cão gato casa janela cidade água árvore manhã noite grande pequeno velho novo vê "
          "encontra abre leva constrói ouve hoje outra vez fora sempre comboio rua criança pão".split(),
    "pl": "pies kot dom okno miasto woda drzewo rano wieczór duży mały stary nowy widzi znajduje otwiera "
          "niesie buduje słyszy dzisiaj znowu zawsze pociąg ulica dziecko chleb".split(),
    "sv": "en ett hund katt hus fönster stad vatten träd morgon kväll stor liten gammal ny ser hittar "
          "öppnar bär bygger hör idag igen ute alltid tåg gata barn bröd".split(),
}
# voices with word lists (language code -> espeak voice and language name)
ESPEAK_LANGS = {
    "en": ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc", "en-gb-x-gbclan"],
    "de": ["de"], "fr": ["fr-fr", "fr-be"], "es": ["es", "es-419"], "it": ["it"], "nl": ["nl"],
    "pt": ["pt", "pt-br"], "pl": ["pl"], "sv": ["sv"],
}
LANG_NAMES = {"en": "English", "de": "German", "fr": "French", "es": "Spanish", "it": "Italian",
              "nl": "Dutch", "pt": "Portuguese", "pl": "Polish", "sv": "Swedish"}
# Latin-script voices that read made-up syllables with their own pronunciation rules
PSEUDO_LANGS = {"fi": "Finnish", "hu": "Hungarian", "cs": "Czech", "tr": "Turkish", "ro": "Romanian",
                "hr": "Croatian", "sk": "Slovak", "sw": "Swahili", "id": "Indonesian", "eo": "Esperanto",
                "la": "Latin", "da": "Danish", "nb": "Norwegian", "et": "Estonian", "lv": "Latvian",
                "lt": "Lithuanian", "cy": "Welsh", "eu": "Basque", "ca": "Catalan", "af": "Afrikaans",
                "sq": "Albanian", "is": "Icelandic", "ga": "Irish", "vi": "Vietnamese", "mt": "Maltese"}
_STYLE_VARIANTS = {"whisper": ("male", "whispering"), "whisperf": ("female", "whispering"),
                   "croak": ("male", "croaky"), "klatt": ("male", "synthetic"), "klatt2": ("male", "synthetic"),
                   "klatt3": ("male", "synthetic"), "robosoft": ("male", "robotic"),
                   "UniRobot": ("male", "robotic"), "anikaRobot": ("female", "robotic")}
_VARIANTS: list[tuple[str, str]] | None = None


def espeak_variants() -> list[tuple[str, str]]:
    """(variant, gender) pairs from ``espeak-ng --voices=variant``."""
    global _VARIANTS
    if _VARIANTS is None:
        res = subprocess.run(["espeak-ng", "--voices=variant"], capture_output=True, text=True, check=True)
        found = []
        for line in res.stdout.splitlines()[1:]:
            cols = line.split()
            if len(cols) >= 5 and cols[4].startswith("!v/"):
                gender = {"M": "male", "F": "female"}.get(cols[2].split("/")[-1], "")
                name = cols[4][3:]
                if gender and "robo" not in name.lower() and name not in ("Demonic",):
                    found.append((name, gender))
        _VARIANTS = found or [("m1", "male"), ("f1", "female")]
    return _VARIANTS


def random_sentence(rng: np.random.Generator, lang: str) -> str:
    if lang == "en":
        w = WORDS["en"]
        pick = lambda k: w[k][int(rng.integers(len(w[k])))]  # noqa: E731
        parts = [pick("det"), pick("adj"), pick("noun"), pick("verb"), pick("det"), pick("noun")]
        if rng.random() < 0.5:
            parts.append(pick("adv"))
        if rng.random() < 0.3:
            parts += ["and", pick("det"), pick("noun"), pick("verb"), pick("adv")]
        s = re.sub(r"\b([Aa]) (?=[aeiou])", r"\1n ", " ".join(parts))
        return s[0].upper() + s[1:] + str(rng.choice([".", ".", "?", "!"]))
    if lang in WORDS:
        words = WORDS[lang]
        s = " ".join(words[int(i)] for i in rng.integers(0, len(words), int(rng.integers(4, 14))))
        return s[0].upper() + s[1:] + "."
    # made-up words from syllables
    cons, vows = "bdfghjklmnprstvz", "aeiou"
    words = []
    for _ in range(int(rng.integers(4, 12))):
        words.append("".join(cons[int(rng.integers(len(cons)))] + vows[int(rng.integers(len(vows)))]
                             for _ in range(int(rng.integers(1, 4)))))
    return " ".join(words).capitalize() + "."


def espeak_clip(rng: np.random.Generator, tmpdir: str) -> tuple[np.ndarray, str, str]:
    import soundfile as sf

    r = rng.random()
    if r < 0.55:
        lang = "en"
    elif r < 0.85:
        lang = rng.choice([k for k in ESPEAK_LANGS if k != "en"])
    else:
        lang = rng.choice(list(PSEUDO_LANGS))
    voice = rng.choice(ESPEAK_LANGS[lang]) if lang in ESPEAK_LANGS else lang
    if rng.random() < 0.15:
        variant = str(rng.choice(["whisper", "whisperf", "croak", "klatt", "klatt2", "klatt3"]))
        gender, style = _STYLE_VARIANTS[variant]
    else:
        gender = "female" if rng.random() < 0.5 else "male"  # balance: most variants are male
        variants = [v for v, g in espeak_variants() if g == gender] or [v for v, _ in espeak_variants()]
        variant = variants[int(rng.integers(len(variants)))]
        style = ""
    speed = int(rng.integers(110, 260))
    pitch = int(rng.integers(15, 85))
    amp = int(rng.integers(40, 180))
    n_sent = int(rng.integers(1, 4))
    text = " ".join(random_sentence(rng, lang) for _ in range(n_sent))
    wav = os.path.join(tmpdir, "s.wav")
    subprocess.run(["espeak-ng", "-v", f"{voice}+{variant}", "-s", str(speed), "-p", str(pitch),
                    "-a", str(amp), "-w", wav, text], check=True, capture_output=True)
    x, sr = sf.read(wav, dtype="float32", always_2d=True)
    y = resample(to_mono(x), sr)
    pace = " quickly" if speed > 210 else " slowly" if speed < 140 else ""
    whisper = style == "whispering"
    desc = f"a {gender} voice whispering" if whisper else f"a {style + ' ' if style else ''}{gender} voice speaking"
    if lang in LANG_NAMES:
        caption = f"{desc} {'in ' if whisper else ''}{LANG_NAMES[lang]}{pace}: \"{text}\""
    else:
        caption = f"{desc} made-up words with {PSEUDO_LANGS[lang]} pronunciation{pace}"
    return y, f"{voice}+{variant}", caption


def espeak_batch(rng: np.random.Generator, seconds: float, unit: str) -> list[tuple[np.ndarray, str, str, str]]:
    clips, total, i = [], 0.0, 0
    with tempfile.TemporaryDirectory(prefix="espeak-") as tmp:
        while total < seconds:
            y, voice, caption = espeak_clip(rng, tmp)
            # a short pause on either side, as in a recording
            pad = np.zeros(int(rng.uniform(0.05, 0.4) * SAMPLE_RATE), np.float32)
            y = np.concatenate([pad, y, pad[: len(pad) // 2]])
            if not is_silent(y):
                clips.append((y, "speech", f"espeak:{unit}:{i:04d}:{voice}", caption))
                total += len(y) / SAMPLE_RATE
            i += 1
    return clips


# --------------------------------------------------------------------------------------------
# FluidSynth music from random MIDI files

GM_PROGRAMS = [
    "acoustic grand piano", "bright acoustic piano", "electric grand piano", "honky-tonk piano",
    "electric piano", "electric piano", "harpsichord", "clavinet", "celesta", "glockenspiel",
    "music box", "vibraphone", "marimba", "xylophone", "tubular bells", "dulcimer", "drawbar organ",
    "percussive organ", "rock organ", "church organ", "reed organ", "accordion", "harmonica",
    "tango accordion", "nylon-string guitar", "steel-string guitar", "jazz guitar", "clean electric guitar",
    "muted electric guitar", "overdriven guitar", "distortion guitar", "guitar harmonics", "acoustic bass",
    "fingered electric bass", "picked electric bass", "fretless bass", "slap bass", "slap bass",
    "synth bass", "synth bass", "violin", "viola", "cello", "contrabass", "tremolo strings",
    "pizzicato strings", "orchestral harp", "timpani", "string ensemble", "string ensemble",
    "synth strings", "synth strings", "choir aahs", "voice oohs", "synth voice", "orchestra hit",
    "trumpet", "trombone", "tuba", "muted trumpet", "french horn", "brass section", "synth brass",
    "synth brass", "soprano sax", "alto sax", "tenor sax", "baritone sax", "oboe", "english horn",
    "bassoon", "clarinet", "piccolo", "flute", "recorder", "pan flute", "blown bottle", "shakuhachi",
    "whistle", "ocarina", "square lead synth", "sawtooth lead synth", "calliope lead", "chiff lead",
    "charang lead", "voice lead synth", "fifths lead synth", "bass and lead synth", "new age pad",
    "warm pad", "polysynth pad", "choir pad", "bowed pad", "metallic pad", "halo pad", "sweep pad",
    "rain effect synth", "soundtrack synth", "crystal synth", "atmosphere synth", "brightness synth",
    "goblins synth", "echoes synth", "sci-fi synth", "sitar", "banjo", "shamisen", "koto", "kalimba",
    "bagpipe", "fiddle", "shanai", "tinkle bell", "agogo", "steel drums", "woodblock", "taiko drum",
    "melodic tom", "synth drum", "reverse cymbal", "guitar fret noise", "breath noise", "seashore",
    "bird tweet", "telephone ring", "helicopter", "applause", "gunshot",
]
_MELODIC = [p for p in range(112) if p not in (55,)]           # no orchestra hit / sound effects
_BASSES = list(range(32, 40)) + [42, 43, 58]
_CHORDERS = list(range(0, 8)) + list(range(16, 21)) + [24, 25, 26, 27, 46] + list(range(48, 53)) + list(range(88, 96))
SCALES = {"major": [0, 2, 4, 5, 7, 9, 11], "minor": [0, 2, 3, 5, 7, 8, 10]}


def _vlq(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    return bytes(reversed(out))


def write_midi(path: str | Path, notes: list[tuple[float, float, int, int, int]], programs: dict[int, int],
               bpm: float = 120.0, ticks_per_beat: int = 480) -> None:
    """Write a type-0 Standard MIDI File.

    ``notes``: (start_beat, length_beats, channel 0-15, key, velocity); ``programs``: channel -> GM
    program (channel 9 is the General MIDI drum channel and needs none).
    """
    events: list[tuple[int, int, bytes]] = []  # (tick, order, bytes); note-offs sort before note-ons
    tempo = int(round(60_000_000 / bpm))
    events.append((0, 0, b"\xff\x51\x03" + tempo.to_bytes(3, "big")))
    events.append((0, 0, b"\xff\x58\x04\x04\x02\x18\x08"))
    for ch, prog in sorted(programs.items()):
        events.append((0, 1, bytes([0xC0 | ch, prog & 0x7F])))
    for start, length, ch, key, vel in notes:
        on = int(round(start * ticks_per_beat))
        off = max(on + 1, int(round((start + length) * ticks_per_beat)))
        events.append((on, 3, bytes([0x90 | ch, key & 0x7F, max(1, min(127, vel))])))
        events.append((off, 2, bytes([0x80 | ch, key & 0x7F, 0])))
    events.sort(key=lambda e: (e[0], e[1]))
    track = bytearray()
    last = 0
    for tick, _, data in events:
        track += _vlq(tick - last) + data
        last = tick
    track += _vlq(ticks_per_beat) + b"\xff\x2f\x00"  # one beat of release before end of track
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, ticks_per_beat)
    with open(path, "wb") as fh:
        fh.write(header + b"MTrk" + struct.pack(">I", len(track)) + bytes(track))


def random_song(rng: np.random.Generator, max_seconds: float = 40.0):
    """Random melody/chords/bass/drums; returns (notes, programs, bpm, caption)."""
    bpm = int(rng.integers(60, 180))
    root = int(rng.integers(0, 12))
    mode = str(rng.choice(list(SCALES)))
    scale = SCALES[mode]
    beats_max = max(8, int(max_seconds * bpm / 60))
    bars = int(rng.integers(2, max(3, beats_max // 4) + 1))
    beats = bars * 4
    notes: list[tuple[float, float, int, int, int]] = []
    programs: dict[int, int] = {}
    dyn = float(rng.uniform(0.3, 1.0))
    vel = lambda: int(np.clip(rng.normal(100 * dyn, 10), 10, 127))  # noqa: E731
    parts = []
    layout = rng.choice(["solo", "duo", "band", "band"])
    # chords: I-IV-V-vi style progressions over scale degrees
    progression = [0, int(rng.choice([3, 4, 5])), int(rng.choice([4, 5, 1])), 0]
    def degree_note(deg: int, octave: int) -> int:
        return 12 * octave + root + scale[deg % 7] + 12 * (deg // 7)
    mel_prog = int(rng.choice(_MELODIC))
    programs[0] = mel_prog
    parts.append(f"{GM_PROGRAMS[mel_prog]} melody")
    t, deg = 0.0, int(rng.integers(0, 7))
    step_choices = [0.25, 0.5, 0.5, 1.0, 1.0, 2.0]
    octave = int(rng.integers(4, 7))
    while t < beats:
        length = float(step_choices[int(rng.integers(len(step_choices)))])
        deg = int(np.clip(deg + rng.integers(-2, 3), -3, 10))
        if rng.random() > 0.1:
            notes.append((t, length * rng.uniform(0.7, 1.0), 0, degree_note(deg, octave), vel()))
        t += length
    if layout in ("duo", "band"):
        ch_prog = int(rng.choice(_CHORDERS))
        programs[1] = ch_prog
        parts.append(f"{GM_PROGRAMS[ch_prog]} chords")
        for bar in range(bars):
            d = progression[bar % 4]
            for k in (0, 2, 4):
                notes.append((bar * 4.0, 4.0, 1, degree_note(d + k, 4), int(vel() * 0.7)))
    drums = False
    if layout == "band":
        b_prog = int(rng.choice(_BASSES))
        programs[2] = b_prog
        parts.append(f"{GM_PROGRAMS[b_prog]}")
        for bar in range(bars):
            d = progression[bar % 4]
            for beat in range(4):
                if beat in (0, 2) or rng.random() < 0.3:
                    notes.append((bar * 4.0 + beat, 0.9, 2, degree_note(d, 2), vel()))
        drums = rng.random() < 0.8
        if drums:
            for bar in range(bars):
                for eighth in range(8):
                    tb = bar * 4.0 + eighth / 2
                    notes.append((tb, 0.25, 9, 42, int(vel() * 0.6)))         # closed hi-hat
                    if eighth in (0, 4) or (eighth == 5 and rng.random() < 0.3):
                        notes.append((tb, 0.25, 9, 36, vel()))                 # kick
                    if eighth in (2, 6):
                        notes.append((tb, 0.25, 9, 38, vel()))                 # snare
                if bar % 4 == 3:
                    notes.append((bar * 4.0 + 3.5, 0.5, 9, 49, vel()))         # crash
    key_name = synth._NOTE_NAMES[root]
    desc = ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]
    if drums:
        desc += " with drums"
    soft = "soft " if dyn < 0.5 else ""
    caption = f"{soft}music: {desc}, {bpm} bpm, {key_name} {mode}"
    return notes, programs, bpm, caption


def render_midi(mid: str | Path, wav: str | Path, soundfont: str = SOUNDFONT, gain: float = 0.5) -> None:
    if shutil.which("fluidsynth") is None:
        raise RuntimeError("fluidsynth is not installed")
    subprocess.run(["fluidsynth", "-ni", "-q", "-g", f"{gain:.2f}", "-F", str(wav), "-r", str(SAMPLE_RATE),
                    soundfont, str(mid)], check=True, capture_output=True, timeout=600)


def trim_tail(x: np.ndarray, threshold: float = 10 ** (-70 / 20), keep_s: float = 0.3) -> np.ndarray:
    loud = np.nonzero(np.abs(x) > threshold)[0]
    if len(loud) == 0:
        return x[:0]
    return x[: min(len(x), loud[-1] + int(keep_s * SAMPLE_RATE))]


def fluidsynth_batch(rng: np.random.Generator, seconds: float, unit: str) -> list[tuple[np.ndarray, str, str, str]]:
    import soundfile as sf

    clips, total, i = [], 0.0, 0
    with tempfile.TemporaryDirectory(prefix="fluid-") as tmp:
        mid, wav = os.path.join(tmp, "x.mid"), os.path.join(tmp, "x.wav")
        while total < seconds:
            notes, programs, bpm, caption = random_song(rng, float(rng.uniform(8, 40)))
            write_midi(mid, notes, programs, bpm)
            render_midi(mid, wav, gain=float(rng.uniform(0.2, 0.8)))
            x, sr = sf.read(wav, dtype="float32", always_2d=True)
            y = trim_tail(resample(to_mono(x), sr))
            if not is_silent(y):
                progs = "-".join(str(programs[c]) for c in sorted(programs))
                clips.append((y, "music", f"fluidsynth:{unit}:{i:04d}:gm{progs}", caption))
                total += len(y) / SAMPLE_RATE
            i += 1
    return clips


# --------------------------------------------------------------------------------------------
# held-out benchmark clips


def write_heldout_clips(out: Path, kind: str, candidates: list[tuple[np.ndarray, str, str]],
                        per_kind: int = HELDOUT_CLIPS_PER_KIND, seed: int = 0) -> int:
    """Write up to ``per_kind`` 2-10 s clips ``kind-NNN.wav`` cut from held-out recordings."""
    clip_dir = out / "heldout" / "clips"
    clip_dir.mkdir(parents=True, exist_ok=True)
    if (clip_dir / f"{kind}-000.wav").exists():
        return 0
    rng = np.random.default_rng(seed)
    min_n, max_n = int(HELDOUT_CLIP_MIN_S * SAMPLE_RATE), int(HELDOUT_CLIP_MAX_S * SAMPLE_RATE)
    usable = [c for c in candidates if len(c[0]) >= min_n]
    if not usable:
        return 0
    order = list(rng.permutation(len(usable)))
    picks: list[tuple[np.ndarray, str, str, int]] = []
    used_offsets: dict[int, list[int]] = defaultdict(list)
    attempts = 0
    # long recordings (music) may give several non-overlapping segments
    while len(picks) < per_kind and attempts < per_kind * 20:
        i = order[attempts % len(order)]
        attempts += 1
        x, source, caption = usable[i]
        seg = min(len(x), max_n)
        starts = [s for s in range(0, len(x) - seg + 1, max(seg, 1))]
        free = [s for s in starts if s not in used_offsets[i]]
        if not free:
            continue
        start = free[int(rng.integers(len(free)))] if len(x) > seg else 0
        used_offsets[i].append(start)
        y = x[start:start + seg]
        if is_silent(y.astype(np.float32) / 32768.0):
            continue
        picks.append((y, source, caption, start))
    rows = []
    for k, (y, source, caption, start) in enumerate(picks):
        name = f"{kind}-{k:03d}.wav"
        write_wav(clip_dir / name, y)
        rows.append(f"{name}\t{kind}\t{_clean_field(source)}\t{start}\t{len(y)}\t{_clean_field(caption)}\n")
    idx = clip_dir / "clips.tsv"
    if not idx.exists():
        idx.write_text("file\tkind\tsource\toffset\tlength\tcaption\n")
    with open(idx, "a", encoding="utf-8") as fh:
        fh.writelines(rows)
    return len(picks)


# --------------------------------------------------------------------------------------------
# the builder


@dataclass
class Config:
    out: Path = Path("corpus")
    manifest: Path = DEFAULT_MANIFEST
    cache_dir: Path = Path(".cache/debs")
    pkgs_dir: Path = Path(".cache/pkgs")
    packages: list[str] | None = None      # restrict to these packages (default: all in manifest)
    only_cached: bool = False              # skip packages whose .deb is not already downloaded
    max_deb_mb: float | None = None        # skip packages whose .deb is larger (quick first passes)
    speech_min: float = 60.0
    music_min: float = 60.0
    synth_min: float = 60.0
    jobs: int = 2
    shard_bytes: int = SHARD_BYTES
    download_only: bool = False
    ready_file: bool = True
    gen_unit_s: float = GEN_UNIT_S         # seconds of generated audio per unit (one done.txt line)


def _pool(jobs: int):
    return get_context("fork").Pool(max(1, jobs)) if jobs > 1 else None


def _imap(pool, fn: Callable, items: Iterable, chunksize: int = 4) -> Iterator:
    if pool is None:
        return map(fn, items)
    return pool.imap(fn, items, chunksize=chunksize)


@contextlib.contextmanager
def corpus_lock(out: Path):
    """Exclusive lock on a corpus directory (one builder or recaption at a time)."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(f"another corpus build is using {out}") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def recaption(out: str | Path, manifest: str | Path) -> int:
    """Re-derive the captions of manifest recordings in the indexes (after caption rules change).

    Rows of generated audio keep their captions.  Indexes are rewritten atomically; returns the
    number of captions that changed.
    """
    out = Path(out)
    labels = {f"{r.pkg}:{r.path}": captions_mod.clean_label(r.label_text, r.kind, r.pkg)
              for rows in read_manifest(manifest).values() for r in rows}
    changed = 0
    with corpus_lock(out):
        targets = [(out / s / "index.tsv", "source") for s in ("train", "heldout")]
        targets.append((out / "heldout" / "clips" / "clips.tsv", "source"))
        for path, key in targets:
            if not path.exists():
                continue
            with open(path, newline="", encoding="utf-8") as fh:
                reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
                fields = reader.fieldnames or []
                rows = list(reader)
            for r in rows:
                new = labels.get(r[key])
                if new is not None and new != r["caption"]:
                    r["caption"] = _clean_field(new)
                    changed += 1
            tmp = path.with_name(f".{path.name}.tmp")
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write("\t".join(fields) + "\n")
                fh.writelines("\t".join(r[f] for f in fields) + "\n" for r in rows)
            os.replace(tmp, path)
    return changed


def build(cfg: Config) -> dict[str, dict[str, float]]:
    with corpus_lock(Path(cfg.out)):
        return _build(cfg)


def _build(cfg: Config) -> dict[str, dict[str, float]]:
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    cache_dir, pkgs_dir = Path(cfg.cache_dir), Path(cfg.pkgs_dir)
    pkgs_dir.mkdir(parents=True, exist_ok=True)
    done = read_done(out)
    have = indexed_sources(out)
    writers = {s: ShardWriter(out / s, cfg.shard_bytes) for s in ("train", "heldout")}
    done_log = DoneLog(out, writers)

    by_pkg = read_manifest(cfg.manifest) if cfg.manifest and Path(cfg.manifest).exists() else OrderedDict()
    if cfg.packages is not None:
        unknown = [p for p in cfg.packages if p not in by_pkg]
        if unknown:
            log(f"not in the manifest, ignored: {' '.join(unknown)}")
        by_pkg = OrderedDict((p, by_pkg[p]) for p in cfg.packages if p in by_pkg)
    todo = [p for p in by_pkg if f"pkg:{p}" not in done]
    if cfg.only_cached:
        todo = [p for p in todo if find_deb(p, cache_dir) or (pkgs_dir / f".{p}.extracted").exists()]
    # small packages first (quick first results); packages not downloaded yet last, in manifest order
    sizes = {p: (d.stat().st_size if (d := find_deb(p, cache_dir)) else float("inf")) for p in todo}
    if cfg.max_deb_mb is not None:
        todo = [p for p in todo if sizes[p] <= cfg.max_deb_mb * 1024 * 1024]
    todo.sort(key=lambda p: sizes[p])

    pool = _pool(cfg.jobs)
    try:
        # real recordings; the next package is fetched/unpacked in the background
        with ThreadPoolExecutor(max_workers=1) as prefetch:
            futures = {}

            def submit(i: int) -> None:
                if i < len(todo) and todo[i] not in futures:
                    futures[todo[i]] = prefetch.submit(prepare_package, todo[i], cache_dir, pkgs_dir)

            submit(0)
            for i, pkg in enumerate(todo):
                submit(i + 1)
                try:
                    root = futures.pop(pkg).result()
                except Exception as e:  # noqa: BLE001
                    log(f"{pkg}: skipped ({e})")
                    continue
                if cfg.download_only:
                    continue
                _process_package(pkg, root, by_pkg[pkg], pool, writers, out, have)
                done_log.finished(f"pkg:{pkg}")
        if cfg.download_only:
            return stats(out)
        # generated audio: units of GEN_UNIT_S seconds
        units = []
        for kind, minutes, prefix in (("speech", cfg.speech_min, "espeak"), ("music", cfg.music_min, "fluidsynth"),
                                      ("synth", cfg.synth_min, "synth")):
            n_units = int(np.ceil(minutes * 60 / cfg.gen_unit_s - 1e-9))
            for u in range(n_units):
                unit = f"{prefix}-{u:04d}"
                if f"gen:{unit}" not in done:
                    units.append((kind, unit, _seed(unit), cfg.gen_unit_s))
        # interleave kinds so an early stop still gives a balanced set
        units.sort(key=lambda t: (int(t[1].rsplit("-", 1)[1]), t[0]))
        for unit, clips, err in _imap(pool, _gen_task, units, chunksize=1):
            if err:
                log(f"{unit}: failed ({err})")
                continue
            for x, kind, source, caption in clips:
                if source not in have:
                    writers["train"].add(x, kind, source, caption)
            done_log.finished(f"gen:{unit}")
            log(f"{unit}: {len(clips)} clips")
    finally:
        for w in writers.values():
            w.flush()
        done_log.sync()
        if pool is not None:
            pool.close()
            pool.join()
    st = stats(out)
    if cfg.ready_file:
        (out / "READY").write_text(format_stats(st))
    log("done\n" + format_stats(st))
    return st


def _process_package(pkg: str, root: Path, rows: list[Row], pool, writers: dict[str, ShardWriter],
                     out: Path, have: set[str]) -> None:
    split = split_of(pkg)
    t0 = time.time()
    tasks = [(str(root), r) for r in rows if f"{pkg}:{r.path}" not in have]
    n_ok = n_silent = n_err = 0
    seconds = 0.0
    heldout_cands: dict[str, list[tuple[np.ndarray, str, str]]] = defaultdict(list)
    for row, y, err in _imap(pool, _real_task, tasks, chunksize=8):
        if err:
            n_err += 1
            if n_err <= 5:
                log(f"{pkg}: {row.path}: {err}")
            continue
        if y is None:
            n_silent += 1
            continue
        source = f"{pkg}:{row.path}"
        caption = captions_mod.clean_label(row.label_text, row.kind, pkg)
        writers[split].add(y, row.kind, source, caption)
        have.add(source)
        n_ok += 1
        seconds += len(y) / SAMPLE_RATE
        if split == "heldout":
            heldout_cands[row.kind].append((y, source, caption))
    for kind, cands in heldout_cands.items():
        write_heldout_clips(out, kind, cands, seed=_seed(pkg) % (2**32))
    log(f"{pkg} [{split}]: {n_ok} clips, {seconds / 3600:.2f} h, {n_silent} silent, {n_err} errors, "
        f"{time.time() - t0:.0f} s")
