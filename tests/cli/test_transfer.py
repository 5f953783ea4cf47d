"""Export, import, copy, backup and restore: hostile files are refused, nothing half-done."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ..servers import store_url_for
from .test_cli import cli, populate


@pytest.fixture
def export_lines(tmp_path: Path) -> list[dict[str, object]]:
    """The three sagas of ``populate`` as parsed export lines."""
    source = f"sqlite:///{tmp_path}/src.db"
    populate(source)
    out = tmp_path / "all.jsonl"
    assert cli("export", "--db", source, "--out", str(out))[0] == 0
    return [json.loads(line) for line in out.read_text().splitlines()]


def write_lines(path: Path, lines: list[object]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def imported_ids(url: str) -> set[str]:
    code, out = cli("list", "--db", url, "--json")
    return {json.loads(line)["id"] for line in out.splitlines()} if code == 0 else set()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("version", "abc", "line 2: saga.version must be a whole number"),
        ("step_index", 10**12, "line 2: saga.step_index must be between 0 and 10000"),
        ("attempt", True, "line 2: saga.attempt must be a whole number"),
        ("status", "cancelled", "line 2: saga.status is 'cancelled'; use one of"),
        ("data", {"k": "\ud800"}, "line 2: saga.data: value of 'k' is not valid UTF-8"),
        ("data", {"k": "a\x00b"}, "line 2: saga.data: value of 'k' contains a NUL"),
        ("id", "x" * 300, "line 2: saga.id is 300 characters long"),
        ("created_at", "2026-01-01T00:00:00", "saga.created_at '2026-01-01T00:00:00' has no UTC"),
    ],
)
def test_import_refuses_a_bad_field_naming_line_and_field(
    tmp_path: Path, export_lines: list[dict[str, object]], field: str, value: object, message: str
) -> None:
    bad = json.loads(json.dumps(export_lines[1]))
    bad["saga"][field] = value
    file = write_lines(tmp_path / "bad.jsonl", [export_lines[0], bad, export_lines[2]])
    target = f"sqlite:///{tmp_path}/target.db"
    code, out = cli("import", str(file), "--db", target)
    assert code == 2 and message in out and "nothing was imported" in out, out
    assert "Traceback" not in out
    assert imported_ids(target) == set()


def test_import_refuses_nan_deep_nesting_and_bytes_that_are_not_utf8(
    tmp_path: Path, export_lines: list[dict[str, object]]
) -> None:
    target = f"sqlite:///{tmp_path}/target.db"
    good = json.dumps(export_lines[0])
    nan = good.replace('"data": {', '"data": {"ratio": NaN, ', 1)
    deep = '{"saga": ' + "[" * 100_000 + "]" * 100_000 + "}"
    cases = {
        "nan.jsonl": ((good + "\n" + nan + "\n").encode(), "line 2: NaN is not a number"),
        "deep.jsonl": ((deep + "\n").encode(), "line 1: JSON nested too deeply"),
        "binary.jsonl": ((good + "\n").encode() + b"\x00\xff\xfe\x9c binary", "line 2: not UTF-8"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        code, out = cli("import", str(tmp_path / name), "--db", target)
        assert code == 2 and message in out, (name, out)
        assert "Traceback" not in out
    assert imported_ids(target) == set()


def test_import_refuses_repeated_event_seqs_and_imports_nothing(
    tmp_path: Path, export_lines: list[dict[str, object]]
) -> None:
    bad = json.loads(json.dumps(export_lines[2]))
    bad["events"].append(dict(bad["events"][0]))
    file = write_lines(tmp_path / "dup.jsonl", [export_lines[0], export_lines[1], bad])
    target = f"sqlite:///{tmp_path}/target.db"
    code, out = cli("import", str(file), "--db", target)
    assert code == 2 and "line 3: events repeat seq [1]" in out
    assert imported_ids(target) == set()


def test_an_imported_saga_runs_as_any_other(
    tmp_path: Path, export_lines: list[dict[str, object]]
) -> None:
    # a round trip keeps sagas usable: re-importing into a fresh store and listing them
    file = write_lines(tmp_path / "ok.jsonl", export_lines)
    target = f"sqlite:///{tmp_path}/target.db"
    code, out = cli("import", str(file), "--db", target)
    assert code == 0 and "imported 3 sagas, 0 already present" in out
    code, out = cli("import", str(file), "--db", target)
    assert code == 0 and "imported 0 sagas, 3 already present" in out


def test_export_never_overwrites_without_force_and_names_bad_paths(tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path}/src.db"
    populate(source)
    out = tmp_path / "keep.jsonl"
    out.write_text("150 sagas worth keeping\n")
    code, text = cli("export", "--db", source, "--out", str(out))
    assert code == 2 and "exists" in text and "--force" in text
    assert out.read_text() == "150 sagas worth keeping\n"
    code, text = cli("export", "--db", source, "--out", str(out), "--force")
    assert code == 0 and len(out.read_text().splitlines()) == 3
    code, text = cli("export", "--db", source, "--out", str(tmp_path))
    assert code == 2 and "is a folder" in text
    code, text = cli("export", "--db", source, "--out", str(tmp_path / "no" / "x.jsonl"))
    assert code == 2 and "does not exist" in text
    assert "Traceback" not in text


def test_memory_stores_are_refused_where_they_would_be_empty(tmp_path: Path) -> None:
    for args in (
        ("export", "--db", "memory://", "--out", str(tmp_path / "x.jsonl")),
        ("copy", "--from", "memory://", "--to", f"sqlite:///{tmp_path}/t.db"),
    ):
        code, out = cli(*args)
        assert code == 2 and "lives inside one process" in out, args


def test_copy_names_the_saga_a_target_cannot_hold_and_goes_on_when_asked(
    tmp_path: Path,
) -> None:
    # Given an SQLite store holding a NUL (written before sagakit refused them)
    source = f"sqlite:///{tmp_path}/src.db"
    populate(source)

    _write_raw_nul(tmp_path / "src.db")
    with store_url_for("postgres", tmp_path) as target:
        # When it is copied, stopping at the first failure
        code, out = cli("copy", "--from", source, "--to", target)
        # I expect the bad saga and field named and what was copied reported
        assert code == 1 and "saga 'ok-1'" in out and "value of 'note' contains a NUL" in out
        assert "copied 2 sagas, 0 already present" in out
        # and with --keep-going, every other saga copied
        code, out = cli("copy", "--from", source, "--to", target, "--keep-going")
        assert code == 1 and "saga 'ok-1'" in out
        assert imported_ids(target) == {"undone-2", "failed-3"}


def _write_raw_nul(path: Path) -> None:
    import sqlite3

    conn = sqlite3.connect(path)
    conn.execute(
        "UPDATE saga_instances SET data = json_set(data, '$.note', 'a' || char(0) || 'b') "
        "WHERE id = 'ok-1'"
    )
    conn.commit()
    conn.close()


def test_restore_checks_the_backup_and_refuses_a_live_database(tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path}/live.db"
    populate(source)
    backup = tmp_path / "backup.db"
    assert cli("backup", "--db", source, "--out", str(backup))[0] == 0
    # into a new file: restored and counted
    fresh = f"sqlite:///{tmp_path}/fresh.db"
    code, out = cli("restore", str(backup), "--db", fresh)
    assert code == 0 and "restored 3 sagas" in out
    assert imported_ids(fresh) == {"ok-1", "undone-2", "failed-3"}
    # over a database with sagas: refused unless --force
    code, out = cli("restore", str(backup), "--db", source)
    assert code == 2 and "already holds 3 sagas" in out and "--force" in out
    assert cli("restore", str(backup), "--db", source, "--force")[0] == 0
    # a file that is not a backup
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    code, out = cli("restore", str(junk), "--db", f"sqlite:///{tmp_path}/other.db")
    assert code == 2 and "nothing restored" in out and "Traceback" not in out
