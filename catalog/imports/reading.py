"""Streaming readers for uploaded files: one record at a time, bounded memory, and a clear word for a bad file.

A whole-file problem (wrong encoding, no header, a missing required column) raises FileFormatError before anything
is written; a bad row becomes a RowError with its line, field and reason.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from core.errors import ApplicationError

# csv's default 128 KiB cap rejects long but legitimate product descriptions.
csv.field_size_limit(16 * 1024 * 1024)
# The longest line a delimited or JSONL file may have (a record with a long description is well under it).
MAX_LINE_BYTES = 32 * 1024 * 1024

FORMATS = ("csv", "tsv", "jsonl", "json")


class FileFormatError(ApplicationError):
    def __init__(self, message: str) -> None:
        super().__init__(message, code="bad_file")


@dataclass(frozen=True)
class RowError:
    line: int
    field: str
    reason: str
    value: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "field": self.field, "reason": self.reason, "value": self.value}


@dataclass
class Record:
    """One row of the file: its line number (1 = first line of the file) and its fields by normalised name."""

    line: int
    values: dict[str, Any]
    errors: list[RowError] = field(default_factory=list)


def guess_format(filename: str) -> str:
    suffix = Path(filename).suffix.lower().lstrip(".")
    if suffix in ("ndjson", "jsonlines"):
        return "jsonl"
    if suffix == "txt":
        return "csv"
    if suffix not in FORMATS:
        raise FileFormatError(f"Cannot tell the format of '{filename}': name it .csv, .tsv, .jsonl or .json.")
    return suffix


# What people upload by mistake, by the first bytes of the file.
BINARY_SIGNATURES = {
    b"PK\x03\x04": "a ZIP archive or an Excel workbook (.xlsx): save the sheet as CSV UTF-8",
    b"\xd0\xcf\x11\xe0": "an old Excel workbook (.xls): save the sheet as CSV UTF-8",
    b"%PDF": "a PDF document",
    b"\x1f\x8b": "a gzip archive: unpack it first",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
}


def _sniff_encoding(raw: IO[bytes]) -> None:
    head = raw.read(4096)
    raw.seek(0)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise FileFormatError("The file is UTF-16. Save it as UTF-8 (with or without BOM) and upload it again.")
    for signature, what in BINARY_SIGNATURES.items():
        if head.startswith(signature):
            raise FileFormatError(f"This is {what}, not a CSV, TSV or JSON file. Nothing was imported.")
    if b"\x00" in head:
        raise FileFormatError(
            "The file holds NUL bytes at its start: it is binary, not a text file. Nothing was imported."
        )


def _decode_error(exc: UnicodeDecodeError, path: Path) -> FileFormatError:
    # The text layer decodes in 8 KB blocks, so its position says little: find the first bad line in the bytes.
    line, byte = 0, "?"
    with open(path, "rb") as raw:
        for number, raw_line in enumerate(raw, start=1):
            try:
                raw_line.decode("utf-8")
            except UnicodeDecodeError as line_exc:
                line, byte = number, raw_line[line_exc.start : line_exc.start + 1].hex()
                break
    return FileFormatError(
        f"The file is not UTF-8: byte 0x{byte} on line {line} cannot be read. It is probably Latin-1 or "
        "Windows-1252; save it as UTF-8 (with or without BOM) and upload it again. Nothing was imported."
    )


def normalise_header(name: str) -> str:
    return name.strip().lower().replace(" ", "_").replace("-", "_")


class CountingReader:
    """Opens a file for streaming and reports how far into it the reader has got (bytes), for progress bars."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = path.stat().st_size
        self._raw: IO[bytes] = open(path, "rb")  # noqa: SIM115 - closed by close()
        _sniff_encoding(self._raw)

    @property
    def position(self) -> int:
        try:
            return self._raw.tell()
        except ValueError:
            return self.size

    def text(self) -> io.TextIOWrapper:
        # utf-8-sig strips a BOM when there is one; strict errors so that a wrong encoding is reported, not mangled.
        return io.TextIOWrapper(self._raw, encoding="utf-8-sig", errors="strict", newline="")

    def lines(self) -> Iterator[str]:
        """The file's lines, decoded, none longer than MAX_LINE_BYTES: a file with no line breaks (a binary file, a
        1 GB single line, old Mac line endings) is refused at that size instead of being read whole into memory,
        which a text stream's line iterator would do."""
        number = 0
        while True:
            raw = self._raw.readline(MAX_LINE_BYTES + 1)
            if not raw:
                return
            number += 1
            if len(raw) > MAX_LINE_BYTES:
                raise FileFormatError(
                    f"Line {number} is longer than {MAX_LINE_BYTES // 2**20} MB: this does not look like a CSV, TSV or "
                    "JSONL file with one record per line (is it binary, or saved with old Mac line endings?). "
                    "Nothing was imported."
                )
            try:
                yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                byte = raw[exc.start : exc.start + 1].hex()
                raise FileFormatError(
                    f"The file is not UTF-8: byte 0x{byte} on line {number} cannot be read. It is probably Latin-1 "
                    "or Windows-1252; save it as UTF-8 (with or without BOM) and upload it again. Nothing was "
                    "imported."
                ) from exc

    def close(self) -> None:
        self._raw.close()


def iter_delimited(
    reader: CountingReader, *, delimiter: str, required: tuple[str, ...], any_of: tuple[str, ...] = ()
) -> Iterator[Record]:
    rows = csv.reader(reader.lines(), delimiter=delimiter, strict=True)
    header = next(rows, None)
    if not header or not any(cell.strip() for cell in header):
        raise FileFormatError("The file is empty: it needs a header row naming its columns.")
    names = [normalise_header(cell) for cell in header]
    missing = [name for name in required if name not in names]
    if any_of and not any(name in names for name in any_of):
        missing.append(" or ".join(any_of))
    if missing:
        raise FileFormatError(
            f"Missing column(s): {', '.join(missing)}. The header row has: {', '.join(header)}."
            + ("" if delimiter == "\t" else " (Is it comma-separated?)")
        )
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise FileFormatError(f"Column(s) named twice in the header: {', '.join(duplicates)}.")
    width = len(names)
    while True:
        line = rows.line_num + 1
        try:
            row = next(rows)
        except StopIteration:
            return
        except csv.Error as exc:
            yield Record(line=line, values={}, errors=[RowError(line, "", f"unreadable row: {exc}")])
            continue
        if not row or not any(cell.strip() for cell in row):
            continue
        record = Record(line=line, values=dict(zip(names, row, strict=False)))
        _refuse_nul(record)
        if len(row) != width:
            record.errors.append(RowError(line, "", f"expected {width} fields as in the header, found {len(row)}"))
        yield record


def _refuse_nul(record: Record) -> None:
    """A NUL byte inside a value (a damaged export): the row is reported, since no text column can store it."""
    for name, value in record.values.items():
        # Nested values (JSONL attributes) are checked as JSON, where a NUL is written \u0000 (jsonb refuses it too).
        if ("\x00" in value) if isinstance(value, str) else ("\\u0000" in json.dumps(value, default=str)):
            record.errors.append(RowError(record.line, name, "contains a NUL byte (0x00), which text cannot hold"))


def iter_jsonl(reader: CountingReader) -> Iterator[Record]:
    for line, raw_line in enumerate(reader.lines(), start=1):
        if not raw_line.strip():
            continue
        try:
            value = json.loads(raw_line)
        except json.JSONDecodeError as exc:
            yield Record(line=line, values={}, errors=[RowError(line, "", f"not valid JSON: {exc.msg}")])
            continue
        if not isinstance(value, dict):
            yield Record(line=line, values={}, errors=[RowError(line, "", "expected a JSON object")])
            continue
        record = Record(line=line, values={normalise_header(str(k)): v for k, v in value.items()})
        _refuse_nul(record)
        yield record


def load_json(reader: CountingReader, *, max_bytes: int = 64 * 1024 * 1024) -> Any:
    """A whole JSON document (taxonomy files are small: the Shopify one is 0.7 MB; parsed JSON takes several times
    its size in memory, hence the cap)."""
    if reader.size > max_bytes:
        raise FileFormatError(f"A JSON document over {max_bytes // 2**20} MB is too large; use JSONL or CSV.")
    try:
        return json.load(reader.text())
    except UnicodeDecodeError as exc:
        raise _decode_error(exc, reader.path) from exc
    except json.JSONDecodeError as exc:
        raise FileFormatError(f"Not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}.") from exc


ProgressCallback = Callable[[str, int, int], None]
"""progress(phase, bytes_done, bytes_total)"""


def no_progress(phase: str, done: int, total: int) -> None:
    return None


def cell(values: dict[str, Any], name: str) -> str:
    value = values.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        value = str(value)
    return value.strip()
