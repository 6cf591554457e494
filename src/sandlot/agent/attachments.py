"""Tables pasted into the conversation become files in the session's workspace.

A user often pastes data into the question: a CSV table, a tab-separated copy from a spreadsheet.
To compute with it, a model must copy it into its code, and a small one copies it wrong or, more
often, reads a file that does not exist (``pd.read_csv('products.csv')``). So before the first turn
each table found in the user's messages is written to the workspace (``table1.csv``, ...) and the
model is told the file's name and header. The text of the conversation is not changed.

A table is a run of at least ``MIN_ROWS`` consecutive lines (header included) that split into the
same number (at least two) of comma- or tab-separated fields, under a header that names every
column; a fenced block (```csv ... ```) is read the same way. A file of the user's own is never
overwritten: a name already taken by other content gets a suffix (``table1-2.csv``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .._errors import NotFoundError, TooLargeError

MIN_ROWS = 3
"""A header and at least two rows: fewer is a sentence with commas more often than a table."""
MAX_CELL_WORDS = 4
"""A table's cells are short; a field of more words is a clause of a sentence."""
SENTENCE_ENDS = ".?!:;"
MAX_TABLES = 8
MAX_TABLE_BYTES = 1 << 20


@dataclass(frozen=True)
class Table:
    name: str
    """The file it is written to, relative to the workspace."""
    text: str
    header: str
    rows: int
    """Data rows, the header not counted."""


def find_tables(texts: Iterable[str]) -> list[Table]:
    """The tables in ``texts``, in order, named ``table1.csv``, ``table2.tsv``, ... (at most ``MAX_TABLES``)."""
    found: list[Table] = []
    for text in texts:
        for lines, separator in _runs(text.splitlines()):
            body = "\n".join(lines) + "\n"
            if len(body.encode()) > MAX_TABLE_BYTES or len(found) >= MAX_TABLES:
                continue
            suffix = "tsv" if separator == "\t" else "csv"
            found.append(Table(f"table{len(found) + 1}.{suffix}", body, lines[0], len(lines) - 1))
    return found


def place(tables: Sequence[Table], workspace: Any) -> list[Table]:
    """Write each table into ``workspace`` (blocking: call it in a worker thread); the tables as placed.

    A name already holding the same bytes is kept (the conversation goes on in the same session); one
    holding other bytes is the user's, and the table gets another name beside it.
    """
    placed = []
    for table in tables:
        data = table.text.encode()
        stem, suffix = table.name.rsplit(".", 1)
        for attempt in range(1, 100):
            name = table.name if attempt == 1 else f"{stem}-{attempt}.{suffix}"
            try:
                existing = workspace.read(name, len(data))
            except NotFoundError:
                workspace.write(name, data)
                break
            except TooLargeError:
                continue  # longer than the table: not it
            if existing == data:
                break
        else:
            continue
        placed.append(Table(name, table.text, table.header, table.rows))
    return placed


def user_texts(messages: Sequence[dict[str, Any]]) -> list[str]:
    """The text of each user message (string content, or the text parts of a content list)."""
    texts = []
    for message in messages:
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(part["text"] for part in content
                         if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str))
    return texts


PREVIEW_ROWS = 3


def reference(table: Table) -> str:
    """What stands in the question for a saved table: its file, shape and first rows, and how to read it."""
    rows = table.text.splitlines()
    read = f"pd.read_csv('{table.name}'" + (", sep='\\t')" if table.name.endswith(".tsv") else ")")
    shown = "\n".join(rows[:PREVIEW_ROWS + 1])
    more = f"\n... ({table.rows - PREVIEW_ROWS} more rows in the file)" if table.rows > PREVIEW_ROWS else ""
    return (f"[The table is saved as the file {table.name}: {table.rows} rows. Read it with {read}. "
            f"Its first rows:]\n{shown}{more}")


def with_references(messages: Sequence[dict[str, Any]], tables: Sequence[Table]) -> list[dict[str, Any]]:
    """The messages with each saved table's text replaced by its ``reference`` (copies; the caller's
    messages are not changed). A model that sees a file and a preview computes from the file; one
    that sees the whole table copies it into its code, and a small one copies it wrong."""
    out = []
    for message in messages:
        content = message.get("content")
        if message.get("role") == "user" and isinstance(content, str):
            for table in tables:
                content = content.replace(table.text.rstrip("\n"), reference(table), 1)
            message = {**message, "content": content}
        out.append(message)
    return out


def _runs(lines: list[str]) -> Iterable[tuple[list[str], str]]:
    """Runs of table lines: (the lines, the separator)."""
    run: list[str] = []
    separator, width = "", 0
    in_fence = False
    for raw in [*lines, ""]:  # a last empty line ends the last run
        line = raw.rstrip()
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
            line = ""  # a fence ends a run, and its block's lines start a new one
        sep, count = _shape(line)
        if run and sep == separator and count == width:
            run.append(line.strip())
            continue
        if len(run) >= MIN_ROWS and all(field.strip() for field in run[0].split(separator)):
            yield run, separator  # (a header names every column; a data row may leave a field empty)
        run, separator, width = ([line.strip()], sep, count) if count >= 2 else ([], "", 0)


def _shape(line: str) -> tuple[str, int]:
    """(separator, number of fields) of a line that could be a table row; (``""``, 0) otherwise."""
    if not line.strip():
        return "", 0
    separator = "\t" if "\t" in line else ","
    fields = line.split(separator)
    if len(fields) < 2 or any(len(field.split()) > MAX_CELL_WORDS for field in fields):
        return "", 0
    if line[-1] in SENTENCE_ENDS and not _is_number(fields[-1]):
        return "", 0  # prose: a sentence that happens to have commas
    return separator, len(fields)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
