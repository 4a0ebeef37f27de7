"""The Chinese edition's text: translation files, the reader's language, and Markdown outputs
whose words come from a per-language template while their numbers are computed once.

The English notebooks are the source of every number. Their prose is translated in plain-text
files beside the paired scripts, ``notebooks/NN-name.zh.md``: one entry per Markdown cell,
keyed by the cell's stable id (``# %% [markdown] id="..."`` in the script), each recording the
first 12 hex digits of the SHA-256 of the English text it translates::

    <!-- cell loss en:3f2a9c1b7d0e -->
    ## 损失
    ...

A Markdown output that code makes (``display(...)`` of :func:`markdown`) is a template with
values: the English template stays in the notebook's code, its Chinese one is an entry
``<!-- message KEY en:HASH -->`` in the same files, and the output stores its values in its
metadata, so that ``python -m tools.translate`` writes the Chinese output from the same numbers
without running anything again. An output that a renderer writes whole (the glossary's tables;
notebook 07's explorer, in HTML) stores only the renderer's name, and the Chinese edition calls
the renderer again in Chinese. ``tools/translate.py`` builds ``notebooks/zh/`` from these;
``tests/test_translation.py`` fails on every missing or stale entry and names it.
"""

import hashlib
import json
import numbers
import os
import re
from dataclasses import dataclass
from pathlib import Path

from . import ROOT, vocabulary

LANGUAGES = ("en", "zh")
LANGUAGE_ENV = "KLLOSS_LANG"
NOTEBOOKS = ROOT / "notebooks"
ZH_NOTEBOOKS = NOTEBOOKS / "zh"
SUFFIX = ".zh.md"
METADATA_KEY = "klloss_i18n"
# a stable id: letters, digits, - and _ (nbformat's rule for cell ids), never the positional
# "cell-NN" that tools/refresh.py gives cells without one
KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")
POSITIONAL = re.compile(r"cell-\d+")
ENTRY = re.compile(r"^<!-- (cell|message|code) (\S+) en:([0-9a-f]{12}) -->$", re.M)
FENCE = re.compile(r"\A```python\n(.*)\n```\Z", re.S)
COMMENT = re.compile(r"<!--.*?-->", re.S)


def language():
    """The language of the text that code writes: ``$KLLOSS_LANG`` when set (``en`` or ``zh``),
    else ``zh`` when the kernel runs in ``notebooks/zh/`` (a Chinese notebook opened in
    JupyterLab or checked by nbval starts there), else ``en``."""
    value = os.environ.get(LANGUAGE_ENV)
    if value is None:
        return "zh" if Path.cwd().resolve() == ZH_NOTEBOOKS.resolve() else "en"
    if value not in LANGUAGES:
        raise ValueError(f"{LANGUAGE_ENV} must be one of {LANGUAGES}, got {value!r}")
    return value


def digest(text):
    """The first 12 hex digits of the SHA-256 of ``text`` (UTF-8): what an entry records."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class Entry:
    kind: str  # "cell", "message" or "code"
    key: str
    source_digest: str  # digest of the English text translated
    text: str
    line: int  # where the entry starts in its file, for error messages


def translation_path(notebook):
    """``notebooks/NN-name.zh.md`` for the notebook or script ``notebooks/NN-name.*``."""
    return NOTEBOOKS / (Path(notebook).stem + SUFFIX)


def parse(text, name="translation"):
    """The entries of a translation file's ``text``, in order. Only comments may come before the
    first entry; a key twice is an error."""
    matches = list(ENTRY.finditer(text))
    head = text[: matches[0].start()] if matches else text
    if COMMENT.sub("", head).strip():
        raise ValueError(f"{name}: text before the first '<!-- cell KEY en:HASH -->' line")
    entries, seen = [], set()
    for match, following in zip(matches, [*matches[1:], None], strict=True):
        kind, key, source_digest = match.groups()
        if not KEY.fullmatch(key) or POSITIONAL.fullmatch(key):
            raise ValueError(f"{name}: {kind} key {key!r} is not a stable id (letters, digits, - and _)")
        if (kind, key) in seen:
            raise ValueError(f"{name}: {kind} {key!r} is translated twice")
        seen.add((kind, key))
        body = text[match.end() : following.start() if following else len(text)].strip("\n")
        if kind == "code":  # a code cell with its comments in Chinese, fenced as Python
            fenced = FENCE.match(body)
            if not fenced:
                raise ValueError(f"{name}: code {key!r} must be one ```python fenced block")
            body = fenced.group(1)
        line = text.count("\n", 0, match.start()) + 1
        entries.append(Entry(kind, key, source_digest, body, line))
    return entries


def read(path):
    """The entries of the translation file at ``path`` ({} when there is none), by (kind, key)."""
    path = Path(path)
    if not path.is_file():
        return {}
    return {(e.kind, e.key): e for e in parse(path.read_text(encoding="utf-8"), path.name)}


def messages(folder=NOTEBOOKS):
    """Every message entry of every translation file in ``folder``, by key (keys are unique
    across files, since a kernel looks a message up by its key alone)."""
    found = {}
    for path in sorted(Path(folder).glob("*" + SUFFIX)):
        for (kind, key), entry in read(path).items():
            if kind != "message":
                continue
            if key in found:
                raise ValueError(f"message {key!r} is in {found[key][0].name} and {path.name}")
            found[key] = (path, entry)
    return {key: entry for key, (_, entry) in found.items()}


def without_comments(source):
    """``source`` (Python) with its comments taken out: a comment-only line goes, a trailing
    comment and the spaces before it go. Two cells with the same code give the same text."""
    import io
    import tokenize

    lines = source.splitlines()
    comments = [
        t for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type == tokenize.COMMENT
    ]
    dropped = set()
    for token in reversed(comments):  # from the end, so that columns stay right
        row, column = token.start[0] - 1, token.start[1]
        lines[row] = lines[row][:column].rstrip()
        if not lines[row].strip():
            dropped.add(row)
    return "\n".join(line for row, line in enumerate(lines) if row not in dropped)


# ---- Markdown outputs made by code ----


def _plain(value, name):
    """A value a template may format, as JSON keeps it: bool, int, float or str."""
    if isinstance(value, bool | str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    raise TypeError(f"value {name!r} must be a number or a string, got {type(value).__name__}")


def render_message(key, template, values, lang, translations=None):
    """The text of message ``key`` in ``lang``: ``template`` (English) or its Chinese entry,
    formatted with ``values``. A Chinese entry that is missing, or that translates another
    English template, is an error naming the key."""
    if lang == "en":
        return template.format(**values)
    found = messages() if translations is None else translations
    if key not in found:
        raise KeyError(f"message {key!r} has no Chinese translation: add it to a notebooks/*{SUFFIX} file")
    entry = found[key]
    if entry.source_digest != digest(template):
        raise ValueError(
            f"message {key!r}: its Chinese translation is of an older English template "
            f"(en:{entry.source_digest}, now en:{digest(template)}): update it"
        )
    return entry.text.format(**values)


# what a rendered output (not a template) is made by: name -> (module, function of lang, MIME type)
RENDERERS = {
    "glossary": ("course.glossary", "as_markdown", "text/markdown"),
    "explorer": ("course.explorer", "article_html", "text/html"),  # notebook 07's explorer
}
MIMES = ("text/markdown", "text/html")


def output_mime(spec):
    """The MIME type of the output a ``spec`` describes: a message is Markdown, a renderer says."""
    return RENDERERS[spec["render"]][2] if "render" in spec else "text/markdown"


def render_output(spec, lang, translations=None):
    """The text (Markdown, or HTML for an HTML renderer) of a stored output's ``spec`` (its
    ``klloss_i18n`` metadata) in ``lang``."""
    if "render" in spec:
        import importlib

        module, function, _ = RENDERERS[spec["render"]]
        return getattr(importlib.import_module(module), function)(lang=lang)
    return render_message(spec["message"], spec["template"], spec["values"], lang, translations)


class Output:
    """A Markdown output in the reader's language; its metadata says how to write it again in the
    other language (the English template and the values, or the renderer's name)."""

    def __init__(self, spec):
        self.spec = spec

    def _repr_markdown_(self):
        return render_output(self.spec, language()), {METADATA_KEY: self.spec}

    def __repr__(self):
        return f"<{type(self).__name__} {json.dumps(self.spec, ensure_ascii=False)[:60]}>"


class HtmlOutput(Output):
    """An HTML output in the reader's language (the explorer), written by a renderer."""

    _repr_markdown_ = None  # IPython skips a repr method that is not callable

    def _repr_html_(self):
        return render_output(self.spec, language()), {METADATA_KEY: self.spec}


def markdown(key, template, **values):
    """A Markdown output made by code: ``template`` (English, ``str.format`` fields) filled with
    ``values``, computed once; in the Chinese edition the entry ``<!-- message key ... -->`` is
    the template. ``display(markdown("t", "**T = {T:g}**", T=4.0))``."""
    if not KEY.fullmatch(key) or POSITIONAL.fullmatch(key):
        raise ValueError(f"key must be a stable id (letters, digits, - and _), got {key!r}")
    if not isinstance(template, str):
        raise TypeError(f"template must be a str, got {type(template).__name__}")
    plain = {name: _plain(value, name) for name, value in values.items()}
    template.format(**plain)  # a field without a value fails here, in the English edition too
    return Output({"message": key, "template": template, "values": plain})


def rendered(name):
    """An output written by the renderer ``name`` of :data:`RENDERERS` (the glossary in Markdown,
    the explorer in HTML), in the reader's language."""
    if name not in RENDERERS:
        raise ValueError(f"name must be one of {sorted(RENDERERS)}, got {name!r}")
    spec = {"render": name}
    return HtmlOutput(spec) if output_mime(spec) == "text/html" else Output(spec)


# ---- tables and figures, rendered in both languages when they are made ----
#
# A DataFrame or a matplotlib figure that a notebook shows is rendered twice by the kernel: in the
# reader's language (the output's data) and in Chinese, from the same object, so the numbers are
# computed once. The Chinese rendering is stored in the output's metadata (``klloss_i18n``:
# ``zh``, the Chinese data; ``missing``, the labels the vocabulary had no Chinese for; ``texts``,
# a figure's Chinese words), and ``tools/translate.py`` puts it in place of the English data.
# Labels are translated whole by :func:`course.vocabulary.say`; a label without English words
# (numbers, symbols, code names) stays as it is.

BOTH = "zh"  # the metadata field holding the Chinese rendering


def _translate_label(value, missing):
    if not isinstance(value, str):
        return value
    said = vocabulary.say(value, "zh")
    if said is None:
        missing.append(value)
        return value
    return said


def frame_in(frame, lang):
    """``frame`` with its labels (columns, index, their names) and its text cells in ``lang``, and
    the labels the vocabulary had no Chinese for."""
    missing = []
    if lang == "en":
        return frame, missing
    say = lambda value: _translate_label(value, missing)  # noqa: E731
    zh = frame.rename(index=say, columns=say)
    zh.index = zh.index.set_names([say(n) for n in zh.index.names])
    zh.columns = zh.columns.set_names([say(n) for n in zh.columns.names])
    import pandas as pd

    for position, dtype in enumerate(zh.dtypes):
        if pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
            zh.isetitem(position, zh.iloc[:, position].map(say))
    return zh, list(dict.fromkeys(missing))


def _frame_data(frame):
    return {"text/plain": repr(frame), "text/html": frame._repr_html_()}


def frame_bundle(frame, include=None, exclude=None):
    """IPython's rendering of a DataFrame (text and HTML) in the reader's language, with the
    Chinese one in the metadata; None (IPython's own rendering) when nothing in it is English."""
    zh, missing = frame_in(frame, "zh")
    chinese = _frame_data(zh)
    if chinese == _frame_data(frame) and not missing:
        return None
    return both(_frame_data(frame), chinese, missing)


def both(english, chinese, missing=(), **more):
    """An output's data in the reader's language and its metadata: in the English edition the
    Chinese data (field :data:`BOTH`), for tools/translate.py to put in its place; ``missing``, the
    labels without Chinese; ``more``, what else the Chinese edition keeps (a figure's words)."""
    spec = {**({"missing": list(missing)} if missing else {}), **more}
    if language() == "zh":
        return chinese, {METADATA_KEY: spec}
    return english, {METADATA_KEY: {BOTH: chinese, **spec}}


def translate_outputs(shell=None):
    """Show every DataFrame and matplotlib figure in the reader's language, the Chinese rendering
    kept beside the English one for notebooks/zh/ (call it once, in a notebook's first cell)."""
    if shell is None:
        from IPython import get_ipython

        shell = get_ipython()
    if shell is None:
        return
    import pandas as pd
    from matplotlib.figure import Figure

    from . import plotting

    formatter = shell.display_formatter.mimebundle_formatter
    formatter.for_type(pd.DataFrame, frame_bundle)
    png = shell.display_formatter.formatters["image/png"]
    formatter.for_type(
        Figure, lambda fig, include=None, exclude=None: plotting.figure_bundle(fig, png.lookup(fig))
    )
