"""The shared `--out`/`--check` command of generated folders (chart, dashboards)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpupool.generated_folder import GeneratedFolder


def folder(files: dict[str, str]) -> GeneratedFolder:
    return GeneratedFolder(
        command="python -m example",
        description="example",
        default_out=Path("out"),
        source="example.source",
        make_target="example",
        files=lambda: files,
        owned_globs=("sub/*",),
    )


def test_writes_nested_files_then_checks_clean(tmp_path: Path) -> None:
    generated = folder({"sub/a.yaml": "a\n", "b.json": "{}\n"})
    assert generated.main(["--out", str(tmp_path)]) == 0
    assert (tmp_path / "sub" / "a.yaml").read_text() == "a\n"
    assert generated.stale(tmp_path) == []


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda out: (out / "sub" / "a.yaml").write_text("edited"), "sub/a.yaml differs from example.source"),
        (lambda out: (out / "b.json").unlink(), "b.json is missing"),
        (lambda out: (out / "sub" / "old.yaml").write_text("x"), "sub/old.yaml is not generated from example.source"),
    ],
)
def test_check_names_what_is_stale_and_how_to_regenerate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: object, problem: str
) -> None:
    generated = folder({"sub/a.yaml": "a\n", "b.json": "{}\n"})
    generated.main(["--out", str(tmp_path)])
    damage(tmp_path)  # type: ignore[operator]
    assert generated.main(["--out", str(tmp_path), "--check"]) == 1
    err = capsys.readouterr().err
    assert problem in err and "make example" in err


def test_files_outside_the_owned_patterns_are_left_alone(tmp_path: Path) -> None:
    generated = folder({"sub/a.yaml": "a\n"})
    generated.main(["--out", str(tmp_path)])
    (tmp_path / "hand-written.yaml").write_text("mine")
    assert generated.stale(tmp_path) == []
