"""Turn the noisy ``label_text`` of the training manifest (``folder/file_name``) into captions.

The rules are deliberately modest: split words, drop numbering and uninformative folder names,
map a few well-known noisy folders, and add a kind-specific prefix.  A caption should never claim
more than the file name and folder say.
"""

from __future__ import annotations

import re

# language / locale folder names -> language (speech packages are organised by language)
LANGUAGES = {
    "ar": "Arabic", "be": "Belarusian", "bg": "Bulgarian", "br": "Breton", "ca": "Catalan",
    "cs": "Czech", "da": "Danish", "de": "German", "el": "Greek", "en": "English", "en_gb": "English",
    "en_us": "English", "eo": "Esperanto", "es": "Spanish", "et": "Estonian", "eu": "Basque",
    "fi": "Finnish", "fr": "French", "ga": "Irish", "gl": "Galician", "he": "Hebrew", "hr": "Croatian",
    "hu": "Hungarian", "it": "Italian", "ja": "Japanese", "ko": "Korean", "lt": "Lithuanian",
    "lv": "Latvian", "nb": "Norwegian", "nds": "Low German", "nl": "Dutch", "nn": "Norwegian",
    "pl": "Polish", "pt": "Portuguese", "pt_br": "Portuguese", "ro": "Romanian", "ru": "Russian",
    "sk": "Slovak", "sl": "Slovenian", "sr": "Serbian", "sv": "Swedish", "tr": "Turkish",
    "uk": "Ukrainian", "wa": "Walloon", "zh": "Chinese", "zh_cn": "Chinese", "zh_tw": "Chinese",
}

# folder names that say nothing about the sound
UNINFORMATIVE = {
    "", "sound", "sounds", "sfx", "snd", "audio", "data", "misc", "other", "extra", "music", "musics",
    "default", "classic", "voices", "voice", "samples", "wav", "ogg", "effects", "media", "stereo",
    "mono", "actor", "global", "interface", "common", "general", "res", "fx",
}

# noisy folder names with a clearer meaning
FOLDER_MAP = {
    "attack": "weapon", "weapon": "weapon", "weapons": "weapon", "explons": "explosion",
    "explosions": "explosion", "impact": "impact", "death": "death cry", "animal": "animal",
    "fauna": "animal", "gathering": "gathering resources", "footsteps": "footsteps", "ui": "user interface",
    "water_sounds": "water", "woodcutting": "woodcutting", "vehicle": "vehicle", "countdown": "countdown voice",
    "digits": "spoken number", "letters": "spoken letter", "phonetic": "spoken phonetic alphabet word",
    "building": "building", "cmndrvoc": "commander voice", "vtoltalk": "pilot radio voice",
    "animals": "animal", "missmesg": "mission voice message", "coltive": "collective voice message",
    "tutorial": "tutorial voice narration", "console": "game console voice message",
}
# folders whose file names are only codes (warzone2100 "pcv625", "tut49", "col012a")
CODE_NAMED_FOLDERS = {"missmesg", "coltive", "tutorial", "console", "cmndrvoc", "vtoltalk", "extra"}
_CODE_NAME = re.compile(r"^[A-Za-z]{1,4}\d+[a-z]?$")
# megaglest-style unit sounds: "<unit>_ack3", "<unit>_select2" are the unit's voice responses
_VOICE_RESPONSES = {"acknowledgement": "voice acknowledgement", "select": "voice response when selected"}

# per-package prefixes where the package says what kind of sound everything is
PACKAGE_HINTS = {
    "bucklespring-data": "mechanical keyboard key",
    "sound-theme-freedesktop": "desktop notification sound",
    "yaru-theme-sound": "desktop notification sound",
    "deepin-sound-theme": "desktop notification sound",
    "oxygen-sounds": "desktop notification sound",
    "lomiri-sounds": "phone notification sound",
    "torcs-data": "racing car",
    "trigger-rally-data": "rally co-driver calling",
    "asterisk-core-sounds-en-wav": "telephone voice prompt",
    "sound-icons": "sound icon",
}

_ABBREV = {"ui": "user interface", "sfx": "", "snd": "", "amb": "ambient", "expl": "explosion",
           "lrgexpl": "large explosion", "smlexpl": "small explosion", "noammo": "no ammo",
           "ack": "acknowledgement", "btn": "button", "fx": ""}


def split_words(text: str) -> list[str]:
    """Split a file/folder name into lower-case words, dropping digits and numbering."""
    text = re.sub(r"\.[A-Za-z0-9]{2,4}$", "", text)
    text = re.sub(r"([a-z])([A-Z])", r"\1 \2", text)          # camelCase
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", text)    # ABCWord
    text = re.sub(r"[_\-.+/\\]+", " ", text)
    text = re.sub(r"\d+", " ", text)
    words = [w.lower() for w in text.split() if w]
    out: list[str] = []
    for w in words:
        w = _ABBREV.get(w, w)
        if w and (len(w) > 1 or w in ("a", "i")):
            out.extend(w.split())
    # drop trailing single letters like take variants "hit_a", "hit_b"
    while len(out) > 1 and len(out[-1]) == 1 and out[-1] != "a":
        out.pop()
    return out


def _dedupe(words: list[str]) -> list[str]:
    out: list[str] = []
    for w in words:
        if not out or out[-1] != w:
            out.append(w)
    return out


def clean_label(label_text: str, kind: str, pkg: str = "") -> str:
    """Caption for one manifest row: ``clean_label("animal/cattle_01", "sfx") == "cattle"``."""
    folder, _, name = label_text.rpartition("/")
    folder_key = folder.strip().lower()
    name_words = split_words(name)
    hint = PACKAGE_HINTS.get(pkg)

    if kind == "speech":
        return _speech_caption(folder, name, name_words, pkg, hint)

    if kind == "music":
        title = " ".join(_dedupe(name_words))
        return f"music, \"{title}\"" if title else "music"

    # sound effects
    suffix = ""
    if _CODE_NAME.match(name.strip()) and (folder_key in CODE_NAMED_FOLDERS or pkg == "warzone2100-data"):
        if pkg == "warzone2100-data" and name.lower().startswith("pcv") and folder_key not in FOLDER_MAP:
            return "game voice message"
        name_words = []
    if len(name_words) >= 2 and name_words[-1] in _VOICE_RESPONSES:
        suffix = _VOICE_RESPONSES[name_words[-1]]
        name_words = name_words[:-1]
    parts: list[str] = []
    if folder_key in FOLDER_MAP:
        parts.extend(FOLDER_MAP[folder_key].split())
    else:
        parts.extend(w for w in split_words(folder) if w not in UNINFORMATIVE and w not in LANGUAGES)
    words = [w for w in name_words if w not in UNINFORMATIVE]
    if parts and set(parts) <= set(words):
        parts = words  # the name already says what the folder says ("explons/lrgexpl")
    else:
        parts += [w for w in words if w not in parts]
    # the folder word is redundant if the name already says it ("animal cattle" -> "cattle")
    if folder_key in ("animal", "animals", "fauna") and len(parts) > 1:
        parts = parts[1:]
    caption = " ".join(_dedupe(parts) + ([suffix] if suffix else []))
    if hint:
        if pkg == "bucklespring-data":
            return hint + (" release" if name.endswith("-1") else " press")
        caption = f"{hint}: {caption}" if caption else hint
    return caption or "sound effect"


_GENDER_WORDS = {"male": "male", "man": "male", "female": "female", "woman": "female", "festivoxmale": "male"}


def _speech_caption(folder: str, name: str, name_words: list[str], pkg: str, hint: str | None) -> str:
    folder_key = folder.strip().lower().replace("-", "_")
    if folder_key in LANGUAGES:
        # ktuberling-style: the file name is an id, the word is spoken in the folder's language
        lang = LANGUAGES[folder_key]
        return f"a voice saying a word in {lang}" if lang else "a voice saying a word"
    folder_words = split_words(folder)
    gender = ""
    for w in name_words + folder_words:
        if w in _GENDER_WORDS:
            gender = _GENDER_WORDS[w]
    if re.search(r"(^|_)f(_|$)", folder_key):
        gender = "female"
    elif re.search(r"(^|_)m(_|$)", folder_key):
        gender = "male"
    phrase_words = [w for w in name_words if w not in _GENDER_WORDS and w not in folder_words]
    phrase = " ".join(_dedupe(phrase_words))
    # a trailing locale (hedgewars "Default_ru") names the language spoken
    lang = ""
    m = re.search(r"_([a-z]{2})$", folder_key)
    if m and m.group(1) in LANGUAGES and m.group(1) != "en":
        lang = LANGUAGES[m.group(1)] or ""
    voice = f"a {gender} voice" if gender else "a voice"
    if pkg == "0ad-data":
        # 0ad units speak ancient languages: the file name is the order, not the words
        return f"{voice} acknowledging an order in a game"
    if hint:
        return f'{hint} "{phrase}"' if phrase else hint
    if folder_key in FOLDER_MAP:
        base = FOLDER_MAP[folder_key]
        return f'{base} "{phrase}"' if phrase else base
    if lang:
        return f"{voice} speaking {lang}"
    style = [w for w in folder_words if w not in UNINFORMATIVE and w not in _GENDER_WORDS and w not in LANGUAGES]
    if style and pkg == "hedgewars-data":
        voice += f" in a {' '.join(style)} character style"
    return f'{voice} saying "{phrase}"' if phrase else f"{voice} speaking"
