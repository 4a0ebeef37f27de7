"""Keep the generated parts of README.md and docs/ current:

* README.md: the notebook table (titles and summaries from the notebooks, run times as measured
  by tools/time_notebooks.py in data/notebook-times.json);
* README.zh.md: the notebooks not yet in the Chinese edition (tools/translate.py's PENDING);
* docs/glossary.md: the glossary (from course.glossary);
* docs/performance.md: the stored benchmark results (data/bench/, its lm/ and hidden/);
* docs/architecture.md: the import graph (tools/architecture.py, read from the sources).

    python -m tools.readme

Each part sits between ``<!-- name: ... -->`` and ``<!-- /name -->``; the text around it is
written by hand. tests/test_readme.py checks that every part is current.
"""

import json
import re
from pathlib import Path

import course
from tools import architecture

ROOT = Path(__file__).resolve().parents[1]

README = ROOT / "README.md"
README_ZH = ROOT / "README.zh.md"
DOCS = ROOT / "docs"
TIMES = ROOT / "data" / "notebook-times.json"


def section(name):
    """The pattern of a generated part: its opening comment, its body, its closing comment."""
    return re.compile(rf"(<!-- {name}:[^\n]*-->\n).*?(<!-- /{name} -->)", re.S)


GLOSSARY, NOTEBOOKS, BENCH, BENCH_LM, BENCH_HIDDEN, IMPORTS, PENDING = (
    section(n) for n in ("glossary", "notebooks", "bench", "bench-lm", "bench-hidden", "imports", "pending")
)
# (column, numerator, N, C): ratios to eager plain KD at the sizes of the targets
BENCH_COLUMNS = [
    ("klloss_v2 / plain KD, 64 x 10", "klloss_v2", 64, 10),
    ("klloss_v2 / plain KD, 1024 x 1000", "klloss_v2", 1024, 1000),
    ("compiled klloss_v2 / plain KD, 1024 x 1000", "klloss_v2 compiled", 1024, 1000),
]


def notebook_rows():
    """(file name, title, summary) of every notebook, in order."""
    from tools.build_site import notebook_info

    return [(p.name, *notebook_info(p)) for p in sorted((ROOT / "notebooks").glob("*.ipynb"))]


def measured_times():
    """The stored notebook timings (tools/time_notebooks.py), or None before the first run."""
    return json.loads(TIMES.read_text(encoding="utf-8")) if TIMES.is_file() else None


def notebook_table(record=None):
    record = measured_times() if record is None else record
    seconds = record["seconds"] if record else {"pinned": {}, "native": {}}

    def cell(mode, name):
        return f"{seconds[mode][name]:.0f} s" if name in seconds[mode] else "not measured"

    where = (
        f"{record['processor']} ({record['cores']} cores), {record['date']}" if record else "no machine yet"
    )
    lines = [
        f"Run times measured on {where} (`make times`): as the notebooks run, with the code paths",
        "pinned ([docs/reproducibility.md](docs/reproducibility.md)), and with the CPU's own code paths.",
        "",
        "| notebook | what it shows | time to execute, pinned | time to execute, the CPU's own paths |",
        "|---|---|---|---|",
    ]
    for name, title, summary in notebook_rows():
        # a summary's link to a notebook is relative to notebooks/, the README is one folder up
        summary = re.sub(r"\]\((\d\d[a-z]?-[\w-]+\.ipynb)", r"](notebooks/\1", summary)
        lines.append(
            f"| [`{name}`](notebooks/{name}) {title} | {summary} "
            f"| {cell('pinned', name)} | {cell('native', name)} |"
        )
    return "\n".join(lines)


def _bench_row(name):
    """One stored benchmark file as a table row: where it ran, and its ratios at the target sizes."""
    from course import bench

    record = bench.load_results(name)
    env = record["environment"]
    cpu = f"{env.get('cpu_model', env.get('processor'))}, {env.get('cpu_capability', '?')}"
    machine = env.get("gpu") or cpu
    table = bench.ratio_table(record)
    cells = []
    for _, variant, n, c in BENCH_COLUMNS:
        value = table[variant].get((n, c)) if variant in table else None
        cells.append("not measured" if value is None or value != value else f"{value:.2f}")
    row = [
        f"`{name}.json`",
        f"{machine}, {env['torch_threads']} thread(s)",
        env["torch"],
        env.get("klloss", "not recorded (older code)"),
        bench.code_state(record)[0],
        env["date"],
        *cells,
    ]
    return "| " + " | ".join(row) + " |"


def bench_table():
    """One row per stored benchmark file (data/bench/)."""
    from course import bench

    header = ["file", "machine", "torch", "klloss", "code measured", "date"] + [c[0] for c in BENCH_COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + [_bench_row(name) for name in bench.stored_names()])


def lm_bench_text():
    """The language-model results (data/bench/lm/, benchmarks/bench_lm.py): one table per file,
    or a sentence saying that none exists."""
    from course import bench

    names = bench.lm_names()
    if not names:
        return (
            "No GPU measurement of the current code exists yet: `data/bench/lm/` holds no file.\n"
            "`docs/gpu.md` says how to make one (`tools/device_check.sh`, one call of at most 6 minutes)."
        )
    parts = []
    for name in names:
        record = bench.load_lm_results(name)
        env = record["environment"]
        state, sentence = bench.code_state(record)
        parts += [
            f"`data/bench/lm/{name}.json`: {env.get('gpu', env['device'])}, torch {env['torch']}, "
            f"Triton {env['triton']}, Liger-Kernel {env['liger-kernel']}, {env['date']}; "
            f"{state}: {sentence}. "
            f"Copy bandwidth measured in the same run: {record['copy_bandwidth'] / 1e12:.2f} TB/s.",
            "",
            "| size | variant | ms | x floor | peak above inputs (GiB) |",
            "|---|---|---|---|---|",
        ]
        for (size, variant), row in bench.lm_table(record).iterrows():
            peak = row["peak above inputs (GiB)"]
            peak = "not measured" if peak != peak or peak is None else f"{peak:.2f}"
            parts.append(f"| {size} | {variant} | {row['ms']:.3f} | {row['x floor']:.2f} | {peak} |")
        parts.append("")
    return "\n".join(parts).rstrip("\n")


def _hidden_part(name):
    """One stored hidden-state result (data/bench/hidden/<name>.json): where and what it measured,
    a table of its variants, its targets with their verdicts."""
    from course import bench

    record = bench.load_hidden_results(name)
    env = record["environment"]
    state, sentence = bench.code_state(record)
    where = (
        env.get("gpu") or f"{env['cpu_model']} ({env['cpu_capability']}), {env['torch_threads']} thread(s)"
    )
    extra = f", Liger-Kernel {env['liger-kernel']}" if "liger-kernel" in env else ""
    table = bench.hidden_table(record)
    kept = "pre-allocated: peak / float32 logits"
    both = kept in table.columns  # a CPU result: the gradients None before the step, and pre-allocated
    lines = [
        f"`data/bench/hidden/{name}.json` ({record['benchmark']}): {where}, torch {env['torch']}{extra}, "
        f"{env['date']}; {state}: {sentence}. Median of {record['rounds']} rounds."
        + (
            " Peaks with the gradients None before the step; the last column with them pre-allocated."
            if both
            else ""
        ),
        "",
        "| size | variant | median s | x logits path | peak above inputs (MiB) | peak / N V 4 B |"
        + (" pre-allocated: peak / N V 4 B |" if both else ""),
        "|---|---|---|---|---|---|" + ("---|" if both else ""),
    ]
    shown = lambda x, form: form.format(x) if x == x and x is not None else "not measured"  # noqa: E731
    for (size, variant), row in table.iterrows():
        peak = shown(row["peak above inputs (MiB)"], "{:.0f}")
        ratio = shown(row["peak / float32 logits"], "{:.2f}")
        times = f"{row['s']:.3f} | {row['x logits + margin_kd_loss']:.2f}"
        more = f" {shown(row[kept], '{:.2f}')} |" if both else ""
        lines.append(f"| {size} | {variant} | {times} | {peak} | {ratio} |{more}")
    lines.append("")
    for t in record["targets"]:
        verdict = "met" if t["met"] else "**missed**"
        lines.append(f"- {t['variant']}: {t['target']} = {t['ratio']:.2f}, at most {t['bound']:g}: {verdict}")
    if "met_at" in record:
        lines.append(
            f"- every target met together at: {', '.join(record['met_at']) or 'no chunk size measured'}"
        )
    return lines


def hidden_bench_text():
    """The hidden-state results (data/bench/hidden/): one table per file, or a sentence saying that
    none exists."""
    from course import bench

    names = bench.hidden_names()
    if not names:
        return "No measurement of the loss from hidden states is stored: `data/bench/hidden/` holds no file."
    parts = []
    for name in names:
        parts += [*_hidden_part(name), ""]
    return "\n".join(parts).rstrip("\n")


def pending_zh():
    """README.zh.md's line on the notebooks the Chinese edition does not have yet."""
    from tools.translate import PENDING as pending

    if not pending:
        return "目前每个笔记本都已翻译。"
    return "目前尚未翻译：" + "、".join(f"`{name}`" for name in sorted(pending)) + "。"


GENERATED = {
    README: [(NOTEBOOKS, notebook_table)],
    README_ZH: [(PENDING, pending_zh)],
    DOCS / "glossary.md": [(GLOSSARY, lambda: course.glossary.as_markdown())],
    DOCS / "performance.md": [
        (BENCH, bench_table),
        (BENCH_LM, lm_bench_text),
        (BENCH_HIDDEN, hidden_bench_text),
    ],
    DOCS / "architecture.md": [(IMPORTS, lambda: architecture.as_markdown())],
}
"""{file: [(section pattern, what writes its body)]}."""


def render(path, text):
    """``text`` (the file at ``path``) with its generated parts rewritten."""
    for pattern, body in GENERATED[path]:
        text = pattern.sub(lambda m, body=body: m[1] + body() + "\n" + m[2], text)
    return text


def main():
    for path in GENERATED:
        text = path.read_text(encoding="utf-8")
        new = render(path, text)
        if new != text:
            path.write_text(new, encoding="utf-8")
            print("rewrote", path.relative_to(ROOT))


if __name__ == "__main__":
    main()
