"""The Dockerfile's rules, read from the file itself, so they hold where no image can be built.

A small parser (comments dropped, continuation lines joined) is enough for this Dockerfile;
each test names one rule of the README's "Container image".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gpupool.devcluster import image

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = ROOT / "Dockerfile"


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def parse(text: str) -> tuple[list[tuple[str, str]], list[Stage]]:
    """(instructions before the first FROM, stages) of a Dockerfile's text."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    preamble: list[tuple[str, str]] = []
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            match = re.fullmatch(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", args, re.IGNORECASE)
            assert match, f"cannot read FROM {args}"
            stages.append(Stage(base=match.group(1), name=match.group(2)))
        elif stages:
            stages[-1].instructions.append((keyword, args))
        else:
            preamble.append((keyword, args))
    return preamble, stages


@pytest.fixture(scope="module")
def dockerfile() -> tuple[list[tuple[str, str]], list[Stage]]:
    return parse(DOCKERFILE.read_text())


def test_the_parser_joins_continued_lines_and_splits_stages() -> None:
    preamble, stages = parse("ARG BASE=x\n# c\nFROM ${BASE} AS build\nRUN a \\\n && b\nFROM ${BASE}\nUSER 1\n")
    assert preamble == [("ARG", "BASE=x")]
    assert [(s.base, s.name) for s in stages] == [("${BASE}", "build"), ("${BASE}", None)]
    assert [" ".join(run.split()) for run in stages[0].all("RUN")] == ["a && b"]


def test_it_is_multi_stage_with_a_named_build_stage_copied_from(dockerfile: tuple[list, list[Stage]]) -> None:
    _, stages = dockerfile
    assert len(stages) >= 2
    build = stages[0]
    assert build.name == "build"
    assert any("wheel" in run for run in build.all("RUN")), "the build stage builds the gpupool wheel"
    assert any(copy.startswith("--from=build ") for copy in stages[-1].all("COPY"))


def test_every_base_comes_from_the_base_build_argument_with_a_documented_default(
    dockerfile: tuple[list, list[Stage]],
) -> None:
    preamble, stages = dockerfile
    args = dict(arg.partition("=")[::2] for kw, arg in preamble if kw == "ARG")
    assert args.get("BASE") == f"{image.BASE_REPO}:{image.BaseRecipe().suite}"
    names = {stage.name for stage in stages if stage.name}
    for stage in stages:
        assert stage.base in ("${BASE}", "$BASE") or stage.base in names, f"FROM {stage.base} is not the BASE argument"


def test_the_final_stage_runs_as_a_fixed_numeric_non_root_user(dockerfile: tuple[list, list[Stage]]) -> None:
    _, stages = dockerfile
    users = stages[-1].all("USER")
    assert users, "the final stage sets no USER (it would run as root)"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0, f"USER {users[-1]} is not a numeric non-root UID"
    assert not gid or (gid.isdigit() and int(gid) != 0)
    assert int(uid) == image.IMAGE_UID


def test_the_entrypoint_is_gpupool_in_exec_form(dockerfile: tuple[list, list[Stage]]) -> None:
    _, stages = dockerfile
    entrypoints = stages[-1].all("ENTRYPOINT")
    assert entrypoints and json.loads(entrypoints[-1]) == ["gpupool"]
    commands = stages[-1].all("CMD")
    assert commands and json.loads(commands[-1])[0] in ("operator", "agent")


def test_the_runtime_environment_suits_a_read_only_root_filesystem(dockerfile: tuple[list, list[Stage]]) -> None:
    _, stages = dockerfile
    env = " ".join(stages[-1].all("ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env.split()
    assert "HOME=/tmp" in env.split()
    assert stages[-1].all("WORKDIR")[-1] == "/tmp"


def test_nothing_is_fetched_by_add_and_no_dev_extras_or_secrets_go_in(dockerfile: tuple[list, list[Stage]]) -> None:
    preamble, stages = dockerfile
    instructions = preamble + [pair for stage in stages for pair in stage.instructions]
    for keyword, args in instructions:
        assert not (keyword == "ADD" and re.search(r"\b(https?|git)://|git@", args)), f"ADD {args} fetches remotely"
        assert "[dev]" not in args and "[report]" not in args, f"{keyword} {args} installs extras"
        if keyword in ("ENV", "ARG"):
            assert not re.search(r"(PASSWORD|TOKEN|SECRET|API_KEY)\w*=", args, re.IGNORECASE), f"{keyword} {args}"


def test_the_nvml_library_is_said_to_come_from_the_host() -> None:
    text = " ".join(DOCKERFILE.read_text().replace("#", " ").split())
    assert "nvidia-ml-py" in text and "libnvidia-ml" in text and "container toolkit" in text


def test_the_ignore_file_lets_in_what_the_build_inputs_hash_reads() -> None:
    lines = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert "*" in lines
    assert allowed == {"pyproject.toml", "README.md", *image.CONTEXT_TREES}
    assert set(image.CONTEXT_FILES) - {"Dockerfile", ".dockerignore"} == {"pyproject.toml", "README.md"}
