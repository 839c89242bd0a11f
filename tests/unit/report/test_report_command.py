"""`gpupool report` end to end over the fake Prometheus (every format, files, progress) and
over a Prometheus that cannot be reached or refuses (exit 2, a message naming the URL, no file)."""

from __future__ import annotations

import csv
import http.server
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from report_fakes import FakePrometheus

from gpupool.cli import main as cli_main
from gpupool.report.command import main

WINDOW = ["--from", "2026-11-03T00:00:00Z", "--to", "2026-11-03T06:00:00Z", "--bucket", "1h"]


def run(tmp_path: Path, fmt: str, *extra: str) -> Path:
    out = tmp_path / f"bill.{fmt}"
    assert (
        main(["--prometheus", "http://unused", *WINDOW, "--format", fmt, "--out", str(out), *extra], FakePrometheus())
        == 0
    )
    return out


def test_md_is_written_with_its_plot_next_to_it(tmp_path: Path) -> None:
    out = run(tmp_path, "md", "--quiet")
    text = out.read_text()
    # team-a: (2 GPUs x 3 h + 0.5 x 1 h) x 2.0 = 13.0; team-b: 1 GPU x 2 h x 3.0 = 6.0, saved 2 x (10 - 3) = 14.0.
    assert "| team-a | 6.5000 | 13.0000 |" in text
    assert "| team-b | 2.0000 | 6.0000 | 6.0000 | 0.0000 | 0.0000 | 0.0000 | 14.0000 |" in text
    assert (tmp_path / "bill-spend.png").read_bytes().startswith(b"\x89PNG")
    assert "(bill-spend.png)" in text


def test_csv_json_and_html(tmp_path: Path) -> None:
    rows = list(csv.DictReader(run(tmp_path, "csv", "--quiet").open()))
    assert {r["queue"]: float(r["cost"]) for r in rows if r["record"] == "queue"} == pytest.approx(
        {"team-a": 13.0, "team-b": 6.0}
    )
    data = json.loads(run(tmp_path, "json", "--quiet").read_text())
    assert data["total"]["cost"] == pytest.approx(19.0) and data["jobs"][0]["job"] == "train"
    html = run(tmp_path, "html", "--quiet").read_text()
    assert "data:image/png;base64," in html and "<td>13.0000</td>" in html
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind


def test_stdout_and_progress_on_stderr_unless_quiet(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--prometheus", "http://unused", *WINDOW, "--format", "json"], FakePrometheus()) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["total"]["gpu_hours"] == pytest.approx(8.5)
    progress = [line for line in captured.err.splitlines() if "querying" in line]
    assert len(progress) == 6 and progress[-1].endswith("2026-11-03 05:00 to 2026-11-03 06:00 UTC (6/6)")
    assert main(["--prometheus", "http://unused", *WINDOW, "--quiet"], FakePrometheus()) == 0
    assert capsys.readouterr().err == ""


def test_bad_periods_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--period", "2026-13"], ["--period", "2026-11", "--from", "1"], ["--from", "1"]):
        with pytest.raises(SystemExit) as exit_:
            main(["--prometheus", "http://unused", *argv], FakePrometheus())
        assert exit_.value.code == 2
    assert "--period" in capsys.readouterr().err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_unreachable_prometheus_exits_2_naming_the_url_and_writes_nothing(
    tmp_path: Path, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    out = tmp_path / f"bill.{fmt}"
    code = cli_main(["report", "--prometheus", url, "--period", "2026-11", "--format", fmt, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"cannot reach Prometheus at {url}" in err and "--prometheus" in err and "nothing was written" in err
    assert list(tmp_path.iterdir()) == []


class Refusing(http.server.BaseHTTPRequestHandler):
    """Answers every query as Prometheus does a bad one."""

    def do_GET(self) -> None:
        body = json.dumps({"status": "error", "errorType": "bad_data", "error": "parse error"}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def refusing() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_refused_query_exits_2_with_prometheus_own_words(
    tmp_path: Path, refusing: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bill.csv"
    assert main(["--prometheus", refusing, "--period", "2026-11-03", "--format", "csv", "--out", str(out)]) == 2
    assert f"Prometheus at {refusing} refused a query: bad_data: parse error" in capsys.readouterr().err
    assert not out.exists()
