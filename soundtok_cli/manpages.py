"""Man pages for `soundtok` and every subcommand, generated from the command line itself.

    python -m soundtok_cli.manpages man/        (what `make man` runs)

The typer app is walked as a click command tree: each command's name, usage, help, arguments and
options (with their help and defaults), and its epilog, which holds the examples (indented lines),
further notes (other paragraphs) and the exit status ("Exit status: 0 ..., 1 ..., 2 ...").
The output is deterministic (no dates), so tests/test_manpages.py can regenerate the pages and
compare them byte for byte with the checked-in man/ folder.

Only attributes that click and every typer version share are used (opts, help, default, nargs,
is_flag, required), so the pages do not change with how a typer release renders its own help.
"""

from __future__ import annotations

import enum
import os
import re
import sys
from dataclasses import dataclass, field

from soundtok_cli import __version__

PROG = "soundtok"
SECTION = "1"
MANUAL = "soundtok manual"

GENERIC_EXIT_STATUS = [
    ("0", "success."),
    ("1", "some inputs failed; the others were processed and their outputs written."),
    ("2", "usage error, or nothing could be done; no output is left under the final name."),
]


# --------------------------------------------------------------------------------------------
# Walking the command tree


@dataclass
class Param:
    names: list[str]  # ["-o", "--output"] for an option; ["INPUTS"] for an argument
    metavar: str | None  # None for a flag
    help: str
    default: str | None = None
    required: bool = False
    repeat: bool = False  # takes several values


@dataclass
class Page:
    name: str  # "soundtok" or "soundtok encode"
    summary: str
    usage: list[str]
    description: list[str]
    arguments: list[Param] = field(default_factory=list)
    options: list[Param] = field(default_factory=list)
    examples: list[list[str]] = field(default_factory=list)  # groups of lines
    notes: list[str] = field(default_factory=list)
    exit_status: list[tuple[str, str]] | str = field(default_factory=lambda: list(GENERIC_EXIT_STATUS))
    commands: list[tuple[str, str]] = field(default_factory=list)

    @property
    def filename(self) -> str:
        return self.name.replace(" ", "-") + "." + SECTION


def _root():
    """The click group behind the typer app, and its context (help option names included)."""
    import typer.main

    from soundtok_cli.app import app

    # typer words its completion options differently when this (test) variable is set
    saved = os.environ.pop("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", None)
    try:
        group = typer.main.get_command(app)
    finally:
        if saved is not None:
            os.environ["_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION"] = saved
    ctx = group.context_class(group, info_name=PROG, **(group.context_settings or {}))
    return group, ctx


def _child_context(command, name: str, parent):
    return command.context_class(command, info_name=name, parent=parent, **(command.context_settings or {}))


def _choices(param) -> list[str] | None:
    choices = getattr(getattr(param, "type", None), "choices", None)
    if choices is None:
        descriptor = getattr(param, "type_descriptor", None)
        if descriptor is not None and getattr(descriptor, "is_choice", False):
            choices = getattr(descriptor, "choices", None)
    if not choices:
        return None
    return [str(c.value if isinstance(c, enum.Enum) else c) for c in choices]


def _default_text(param) -> str | None:
    if getattr(param, "show_default", None) is False or getattr(param, "is_flag", False):
        return None
    if isinstance(getattr(param, "show_default", None), str):
        return param.show_default
    default = param.default
    if default is None or default is Ellipsis or callable(default) or getattr(param, "required", False):
        return None
    if isinstance(default, enum.Enum):
        default = default.value
    if isinstance(default, (list, tuple)):
        if not default:
            return None
        return ", ".join(str(d) for d in default)
    text = str(default)
    return text if text != "" else None


def _param(param) -> Param:
    repeat = getattr(param, "nargs", 1) != 1 or bool(getattr(param, "multiple", False))
    if getattr(param, "param_type_name", "") == "argument":
        name = (param.metavar or param.name or "ARG").upper()
        return Param([name], None, (getattr(param, "help", None) or "").strip(), _default_text(param),
                     bool(param.required), repeat)
    names = sorted(param.opts, key=lambda o: (o.startswith("--"), o)) + list(param.secondary_opts)
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        metavar = None
    else:
        choices = _choices(param)
        longs = [o for o in param.opts if o.startswith("--")]
        named = longs[0][2:] if longs else (param.name or "value")
        metavar = param.metavar or ("|".join(choices) if choices else named.replace("-", "_").upper())
    return Param(names, metavar, (param.help or "").strip(), _default_text(param), bool(param.required), repeat)


def _help_option(ctx) -> Param | None:
    names = list(ctx.help_option_names or [])
    if not names or not getattr(ctx.command, "add_help_option", True):
        return None
    names.sort(key=lambda o: (o.startswith("--"), o))
    return Param(names, None, "Show a short help and exit.")


def _paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs, each on one line (click's \\b markers dropped)."""
    out = []
    for block in re.split(r"\n\s*\n", text or ""):
        lines = [line.strip() for line in block.strip().splitlines() if line.strip() != "\b"]
        if lines:
            out.append(" ".join(lines))
    return out


def _split_epilog(epilog: str) -> tuple[list[list[str]], list[str], str | None]:
    """Examples (indented lines, grouped by blank lines), prose paragraphs, exit status text."""
    examples: list[list[str]] = []
    prose: list[str] = []
    current: list[str] = []
    paragraph: list[str] = []
    previous_blank = True

    def end_paragraph() -> None:
        if paragraph:
            prose.append(" ".join(paragraph))
            paragraph.clear()

    for raw in (epilog or "").splitlines():
        line = raw.rstrip()
        if not line.strip():
            end_paragraph()
            previous_blank = True
            continue
        if line.strip().rstrip(":").lower() in ("example", "examples") and not line[:1].isspace():
            end_paragraph()
            continue
        if line[:1].isspace():
            end_paragraph()
            if previous_blank or not current:
                current = []
                examples.append(current)
            current.append(line.strip())
        else:
            paragraph.append(line.strip())
        previous_blank = False
    end_paragraph()

    exit_text = None
    notes = []
    for text in prose:
        match = re.search(r"\bExit status:\s*", text, flags=re.IGNORECASE)
        if match and exit_text is None:
            before, exit_text = text[: match.start()].strip(), text[match.end():].strip()
            if before:
                notes.append(before)
        else:
            notes.append(text)
    return examples, notes, exit_text


def _exit_status(text: str | None) -> list[tuple[str, str]] | str:
    if not text:
        return list(GENERIC_EXIT_STATUS)
    parts = re.split(r",\s*(?=\d+\s)|;\s*(?=\d+\s)", text.strip().rstrip("."))
    items = []
    for part in parts:
        match = re.fullmatch(r"(\d+)\s+(.+)", part.strip(), flags=re.DOTALL)
        if not match:
            return text
        items.append((match.group(1), match.group(2).strip() + "."))
    return items


def _summary(help_text: str) -> str:
    first = _paragraphs(help_text)[0] if _paragraphs(help_text) else ""
    first = re.split(r"(?<=\.)\s", first)[0].rstrip(".")
    if len(first) > 1 and first[0].isupper() and first[1].islower():
        first = first[0].lower() + first[1:]
    return first


def _usage(prefix: str, command, is_group: bool) -> list[str]:
    pieces = ["[OPTIONS]"]
    if is_group:
        pieces += ["COMMAND", "[ARGS]..."]
        return [prefix] + pieces
    for param in command.params:
        if getattr(param, "param_type_name", "") != "argument" or getattr(param, "hidden", False):
            continue
        p = _param(param)
        piece = p.names[0] if p.required else f"[{p.names[0]}]"
        pieces.append(piece + ("..." if p.repeat else ""))
    return [prefix] + pieces


def _command_page(name: str, command, ctx) -> Page:
    examples, notes, exit_text = _split_epilog(command.epilog or "")
    page = Page(
        name=f"{PROG} {name}",
        summary=_summary(command.help or command.short_help or ""),
        usage=_usage(f"{PROG} {name}", command, is_group=False),
        description=_paragraphs(command.help or ""),
        examples=examples,
        notes=notes,
        exit_status=_exit_status(exit_text),
    )
    for param in command.params:
        if getattr(param, "hidden", False):
            continue
        target = page.arguments if getattr(param, "param_type_name", "") == "argument" else page.options
        target.append(_param(param))
    help_option = _help_option(ctx)
    if help_option is not None:
        page.options.append(help_option)
    return page


def pages() -> list[Page]:
    """The root page first, then one page per (visible) subcommand, in the order of `--help`."""
    group, ctx = _root()
    names = [n for n in group.list_commands(ctx) if not getattr(group.get_command(ctx, n), "hidden", False)]
    examples, notes, exit_text = _split_epilog(group.epilog or "")
    root = Page(
        name=PROG,
        summary=_summary(group.help or ""),
        usage=_usage(PROG, group, is_group=True),
        description=_paragraphs(group.help or ""),
        examples=examples,
        notes=notes,
        exit_status=_exit_status(exit_text),
    )
    root.options = [_param(p) for p in group.params if not getattr(p, "hidden", False)]
    help_option = _help_option(ctx)
    if help_option is not None:
        root.options.append(help_option)
    out = [root]
    for name in names:
        command = group.get_command(ctx, name)
        root.commands.append((name, _summary(command.help or command.short_help or "")))
        out.append(_command_page(name, command, _child_context(command, name, ctx)))
    return out


# --------------------------------------------------------------------------------------------
# roff


def _escape(text: str) -> str:
    """Text for roff: backslashes escaped, option dashes as minus signs, no leading dot/quote."""
    text = text.replace("\\", "\\e")
    return re.sub(r"(?<!\w)-", r"\\-", text)  # -o, --levels, "- for stdin"; not "non-stop"


def _line(text: str) -> str:
    text = _escape(text)
    return "\\&" + text if text[:1] in (".", "'") else text


def _code(text: str) -> str:
    """A literal line (examples, usage): every dash is a minus sign."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + text if text[:1] in (".", "'") else text


def _usage_piece(piece: str) -> str:
    """[OPTIONS] -> [\\fIOPTIONS\\fR], [INPUTS]... -> [\\fIINPUTS\\fR]..., STORE -> \\fISTORE\\fR."""
    optional = piece.startswith("[")
    name = piece.strip("[].")
    dots = "..." if piece.endswith("...") else ""
    inner = "\\fI" + _code(name) + "\\fR"
    return (f"[{inner}]" if optional else inner) + dots


def _option_head(p: Param) -> str:
    names = ", ".join(f"\\fB{_code(n)}\\fR" for n in p.names)
    if p.metavar:
        names += f" \\fI{_code(p.metavar)}\\fR"
    return names


def _param_help(p: Param) -> str:
    extra = []
    if p.default is not None:
        extra.append(f"default: {p.default}")
    if p.required:
        extra.append("required")
    text = p.help or ""
    if extra:
        text = (text + " " if text else "") + "[" + "; ".join(extra) + "]"
    return text


def render(page: Page, all_pages: list[Page]) -> str:
    title = page.name.replace(" ", "-")
    out = [
        f'.\\" Generated by "python -m soundtok_cli.manpages" (make man) from the {PROG} command line.',
        '.\\" Do not edit: change the command\'s help and epilog instead, then run make man.',
        f'.TH {_code(title.upper())} {SECTION} "" "{PROG} {__version__}" "{MANUAL}"',
        ".nh",
        ".ad l",
        ".SH NAME",
        f"{_code(title)} \\- {_escape(page.summary)}",
        ".SH SYNOPSIS",
    ]
    head, *rest = page.usage
    out.append(f".B {_code(head)}")
    out.append(" ".join(_usage_piece(piece) for piece in rest))
    out.append(".SH DESCRIPTION")
    for i, paragraph in enumerate(page.description + page.notes):
        if i:
            out.append(".PP")
        out.append(_line(paragraph))
    if page.commands:
        out.append(".SH COMMANDS")
        for name, summary in page.commands:
            out += [".TP", f"\\fB{_code(name)}\\fR", _line(summary + "; see") if summary else _line("See"),
                    f".BR {_code(PROG + '-' + name)} ({SECTION})."]
    if page.arguments:
        out.append(".SH ARGUMENTS")
        for p in page.arguments:
            out += [".TP", f"\\fI{_code(p.names[0])}\\fR" + ("..." if p.repeat else "")]
            out.append(_line(_param_help(p)) if _param_help(p) else "")
    if page.options:
        out.append(".SH OPTIONS")
        for p in page.options:
            out += [".TP", _option_head(p)]
            text = _param_help(p)
            if text:
                out.append(_line(text))
    if page.examples:
        out.append(".SH EXAMPLES")
        for group in page.examples:
            out += [".PP", ".RS 4", ".nf"]
            out += [_code(line) for line in group]
            out += [".fi", ".RE"]
    out.append(".SH EXIT STATUS")
    if isinstance(page.exit_status, str):
        out.append(_line(page.exit_status))
    else:
        for code, meaning in page.exit_status:
            out += [".TP", f".B {code}", _line(meaning)]
    see = [p for p in all_pages if p.name != page.name]
    if see:
        out.append(".SH SEE ALSO")
        refs = [f".BR {_code(p.name.replace(' ', '-'))} ({SECTION})" for p in see]
        out += [ref + "," for ref in refs[:-1]] + [refs[-1]]
    return "\n".join(out) + "\n"


def render_all() -> dict[str, str]:
    """File name -> page text for the root command and every subcommand."""
    all_pages = pages()
    return {page.filename: render(page, all_pages) for page in all_pages}


def write_all(out_dir: str) -> list[str]:
    """Write every page into out_dir (atomically, each file), remove pages of commands that no
    longer exist, and return the file names written."""
    os.makedirs(out_dir, exist_ok=True)
    rendered = render_all()
    for name, text in rendered.items():
        path = os.path.join(out_dir, name)
        tmp = os.path.join(out_dir, f".{name}.tmp-{os.getpid()}")
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.replace(tmp, path)
    for name in os.listdir(out_dir):
        if re.fullmatch(rf"{PROG}(-[\w-]+)?\.{SECTION}", name) and name not in rendered:
            os.remove(os.path.join(out_dir, name))
    return sorted(rendered)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] in ("-h", "--help"):
        sys.stderr.write("usage: python -m soundtok_cli.manpages OUT_DIR   (e.g. man/)\n")
        return 0 if args and args[0] in ("-h", "--help") else 2
    names = write_all(args[0])
    sys.stderr.write(f"wrote {len(names)} man pages to {args[0]}: {', '.join(names)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
