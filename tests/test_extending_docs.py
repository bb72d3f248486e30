"""docs/EXTENDING.md's worked examples run as written and print what the document says.

Every fenced ``python`` block is an example, run in a fresh interpreter (registries are
process-wide) in an empty folder, offline, with its own cache and data roots. A ``text`` block
right after it is its expected output. A block whose first line is ``# file: NAME`` is not run:
it is written to ``NAME`` beside the next example.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "EXTENDING.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
FILE_LINE = re.compile(r"#\s*file:\s*(\S+)\s*$")
#: The kinds of extension the document must show, each by at least one checked example.
SECTIONS = ("A metric type", "A metric card", "A backbone", "A dataset adapter", "A task")
#: Variables a developer's shell may set that would change what an example sees.
CLEARED_ENV = ("IQA_BENCH_WEIGHTS", "IQA_BENCH_CARDS", "IQA_BENCH_PLUGINS", "IQA_BENCH_REFERENCE")


@dataclass(frozen=True)
class Example:
    """One runnable block of the document.

    Attributes:
        line: Line of the block's opening fence (1-based), to find it in the document.
        section: The ``## `` heading it sits under.
        code: The Python source.
        files: ``(name, text)`` of the ``# file:`` blocks written beside it.
        output: The stated output (the ``text`` block right after it), or None.
    """

    line: int
    section: str
    code: str
    files: tuple[tuple[str, str], ...]
    output: str | None


def _section(text: str, pos: int) -> str:
    headings = re.findall(r"^## (.+)$", text[:pos], re.MULTILINE)
    return headings[-1].strip() if headings else ""


def extract_examples(text: str) -> list[Example]:
    """The runnable examples of a Markdown document, with their files and stated outputs."""
    fences = list(FENCE.finditer(text))
    examples: list[Example] = []
    files: list[tuple[str, str]] = []
    for i, fence in enumerate(fences):
        lang, body = fence.group(1), fence.group(2)
        first = body.split("\n", 1)[0]
        named = FILE_LINE.fullmatch(first.strip())
        if named:
            files.append((named.group(1), body))
            continue
        if lang != "python":
            continue
        output = None
        nxt = fences[i + 1] if i + 1 < len(fences) else None
        if (
            nxt is not None
            and nxt.group(1) == "text"
            and not text[fence.end() : nxt.start()].strip()
        ):
            output = nxt.group(2)
        line = text.count("\n", 0, fence.start()) + 1
        examples.append(Example(line, _section(text, fence.start()), body, tuple(files), output))
        files = []
    return examples


def run_example(
    example: Example, folder: Path, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Runs ``example`` in a fresh interpreter in ``folder`` (offline, isolated roots)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in example.files:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in CLEARED_ENV}
    env.update(
        IQA_BENCH_CACHE=str(folder / ".cache"),
        IQA_BENCH_DATA=str(folder / ".data"),
        IQA_BENCH_OFFLINE="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    )
    return subprocess.run(
        [sys.executable, "-c", example.code],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip("\n").splitlines()]


def check_example(example: Example, folder: Path) -> None:
    """Fails (AssertionError) unless ``example`` exits 0 and prints its stated output."""
    proc = run_example(example, folder)
    where = f"docs/EXTENDING.md line {example.line} ({example.section})"
    assert proc.returncode == 0, f"{where} exited {proc.returncode}:\n{proc.stderr[-4000:]}"
    if example.output is not None:
        assert _lines(proc.stdout) == _lines(example.output), (
            f"{where} printed\n{proc.stdout}\ninstead of\n{example.output}"
        )


EXAMPLES = extract_examples(DOC.read_text(encoding="utf-8"))


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"line{e.line}" for e in EXAMPLES])
def test_each_example_runs_in_a_fresh_interpreter_and_prints_its_stated_output(
    example: Example, tmp_path: Path
) -> None:
    check_example(example, tmp_path)


def test_every_kind_of_extension_has_an_example_with_a_stated_output() -> None:
    checked = {e.section for e in EXAMPLES if e.output is not None}
    assert [s for s in SECTIONS if s not in checked] == []


def test_every_file_block_is_used_by_an_example() -> None:
    text = DOC.read_text(encoding="utf-8")
    named = [m for m in FENCE.finditer(text) if FILE_LINE.fullmatch(m.group(2).split("\n")[0])]
    used = [name for e in EXAMPLES for name, _ in e.files]
    assert len(used) == len(named) > 0


DOC_WITH_A_BROKEN_EXAMPLE = """\
## A task
```python
# file: helper.py
VALUE = 41
```
```python
import helper
print(helper.VALUE + 1)
```
```text
42
```
```python
print("unchecked")
```
Some prose.
```text
not its output: prose stands between
```
"""


def test_the_extractor_pairs_code_with_its_files_and_its_adjacent_output() -> None:
    examples = extract_examples(DOC_WITH_A_BROKEN_EXAMPLE)
    assert [(e.section, e.files, e.output) for e in examples] == [
        ("A task", (("helper.py", "# file: helper.py\nVALUE = 41\n"),), "42\n"),
        ("A task", (), None),
    ]


def test_an_example_that_prints_something_else_fails(tmp_path: Path) -> None:
    example = extract_examples(DOC_WITH_A_BROKEN_EXAMPLE.replace("+ 1", "+ 2"))[0]
    with pytest.raises(AssertionError, match=r"printed\s+43\s+instead of\s+42"):
        check_example(example, tmp_path)


def test_an_example_that_raises_fails(tmp_path: Path) -> None:
    example = extract_examples(DOC_WITH_A_BROKEN_EXAMPLE.replace("VALUE = 41", "VALUE = 1 / 0"))[0]
    with pytest.raises(AssertionError, match=r"(?s)exited 1:.*ZeroDivisionError"):
        check_example(example, tmp_path)
