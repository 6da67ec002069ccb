"""`seqcli tune`: the `tune:` section, the study in SQLite (continued, refused for another spec, a dead trial retried) and,
with $SEQCLI_TEST_POSTGRES_URL, two workers filling one PostgreSQL study (`-m postgres`; .ci/run starts a server)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from seqcli import tune
from seqcli.cli import app
from seqcli.errors import SpecError, TuneError
from seqcli.spec import load_search, load_spec
from tests.conftest import ROOT

TUNE_SMOKE = ROOT / "experiments" / "tune_smoke.yaml"
runner = CliRunner()


def tiny(out: Path, *extra: str) -> list[str]:
    """tune_smoke.yaml with 1-2 epochs, its runs and study under ``out``."""
    return ["--set", f"output.dir={out}", "--set", "training.epochs=2", *extra]


def run_tune(out: Path, trials: int, *extra: str) -> dict[str, Any]:
    result = runner.invoke(app, ["tune", str(TUNE_SMOKE), "--trials", str(trials), "--json", "--quiet", *tiny(out), *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# --------------------------------------------------------------------------- the `tune:` section (no training)


def test_tune_section_is_read_and_trials_are_applied_like_set(tmp_path: Path) -> None:
    search = load_search(TUNE_SMOKE)
    assert [(p.name, p.describe()) for p in search.params] == [
        ("model.layers[0].units", "[4, 8, 16]"),
        ("model.layers[0].cell", "['lstm', 'gru']"),
        ("training.learning_rate", "0.001 .. 0.1 (log)"),  # 1e-3 in YAML is text; tune: reads it as the number it means
    ]
    spec = search.trial_spec({"model.layers[0].units": 16, "model.layers[0].cell": "gru", "training.learning_rate": 0.005})
    assert (spec.model.layers[0].units, spec.model.layers[0].cell, spec.training.learning_rate) == (16, "gru", 0.005)
    assert search.spec.model.layers[0].units == 8  # the base spec keeps its values
    assert load_spec(TUNE_SMOKE) == search.spec  # train/validate read the same spec and leave `tune:` out
    bad = tmp_path / "bad.yaml"
    bad.write_text(TUNE_SMOKE.read_text().replace("units: [4, 8, 16]", "units: {low: 1, high: 9, step: 2}"))
    with pytest.raises(SpecError, match=r"`model\.layers\[0\]\.units` must be an integer\. Received: 'x' \(from `tune\.model\.layers\[0\]\.units` = 'x'\)"):
        load_search(bad).trial_spec({"model.layers[0].units": "x", "model.layers[0].cell": "gru", "training.learning_rate": 0.01})


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("model.layer[0].units: [4, 8]", r"Unknown path `tune\.model\.layer\[0\]\.units` \(.*line 20\): `model` has no key `layer`\. .*Did you mean `tune\.model\.layers\[0\]\.units`\?"),
        ("model.layers[0].units: [0, 8]", r"`model\.layers\[0\]\.units` must be a positive integer\. Received: 0 \(from `tune\.model\.layers\[0\]\.units`, .*line 20\)"),
        ("model.layers[3].units: [4, 8]", r"`tune\.model\.layers\[3\]\.units`: `model\.layers` has 1 item\(s\), so index \[3\] does not exist"),
        ("training.learning_rate: {low: 0.1, high: 0.01}", r"`tune\.training\.learning_rate` must be a range with low below high"),
        ("training.learning_rate: {low: 0, high: 0.1, log: true}", r"must be a log range with a positive low end"),
        ("training.learning_rate: {lo: 0.1, high: 0.2}", r"Unknown key `lo`\. Did you mean `low`\?"),
        ("model.layers[0].cell: {low: 1, high: 2}", r"`model\.layers\[0\]\.cell` is one of 'lstm', 'gru', so it has no range"),
        ("model.layers[0].units: {low: 2.5, high: 8}", r"must be a range of integers .*`low` is 2\.5; write an integer"),
        ("model.layers[0].units: 8", r"`tune\.model\.layers\[0\]\.units` must be a list of choices or a range \{low, high\}\. Received: 8"),
        ("model.layers[0].units: []", r"must be a non-empty list of choices"),
        ("output.dir: [a, b]", r"`tune\.output\.dir`: `output` cannot be searched"),
    ],
)
def test_malformed_tune_entries_are_refused_with_the_path_and_fix(tmp_path: Path, entry: str, message: str) -> None:
    spec = tmp_path / "spec.yaml"
    base = TUNE_SMOKE.read_text().split("tune:")[0].replace("../data", str(ROOT / "data"))
    spec.write_text(base + "tune:\n  " + entry + "\n")
    assert base.count("\n") == 18  # the entry is on line 20
    with pytest.raises(SpecError, match=message):
        load_spec(spec)  # validate and train check it too


def test_help_and_validate_of_a_tune_spec_import_no_optuna() -> None:
    code = (
        "import sys; from typer.testing import CliRunner; from seqcli.cli import app; "
        f"r = CliRunner().invoke(app, ['validate', {str(TUNE_SMOKE)!r}]); assert r.exit_code == 0, r.output; "
        "r = CliRunner().invoke(app, ['tune', '--help']); assert r.exit_code == 0 and '--storage' in r.output; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('optuna', 'sqlalchemy', 'tensorflow', 'keras')))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_tune_needs_a_tune_section() -> None:
    with pytest.raises(SpecError, match=r"smoke\.yaml has no `tune:` section, so there is nothing to search\. Add one"):
        load_search(ROOT / "experiments" / "smoke.yaml")


def test_storage_urls_never_show_the_password(tmp_path: Path) -> None:
    assert tune.redact("postgresql://me:s3cret@db.example:5432/studies") == "postgresql://me:***@db.example:5432/studies"
    assert tune.redact("postgresql://db/x?user=me&password=s3cret") == "postgresql://db/x?user=me&password=***"
    assert tune.redact("sqlite:////tmp/a/tune.db") == "sqlite:////tmp/a/tune.db"
    spec = load_spec(TUNE_SMOKE, [f"output.dir={tmp_path}"])
    assert tune.storage_url(spec, "postgresql://me:pw@h/d") == "postgresql+psycopg://me:pw@h/d"
    assert tune.storage_url(spec, None) == f"sqlite:///{tmp_path.resolve()}/tune_smoke/tune.db"
    with pytest.raises(TuneError) as caught:
        tune.open_storage("postgresql+psycopg://me:s3cret@127.0.0.1:9/studies")
    assert "127.0.0.1:9" in str(caught.value) and "s3cret" not in str(caught.value)


# --------------------------------------------------------------------------- searches (tiny trials)


def test_search_fills_the_study_then_continues_it(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    first = run_tune(out, 3)
    assert first["finished"] == 3 and len(first["ran_here"]) == len(first["trials"]) == 3
    baseline = first["trials"][0]  # trial 0: the spec's own values, the untuned result to beat
    assert baseline["baseline"] and baseline["params"] == {"model.layers[0].units": 8, "model.layers[0].cell": "lstm", "training.learning_rate": 0.02}
    assert not any(row["baseline"] for row in first["trials"][1:])
    runs = {row["number"]: Path(row["run"]) for row in first["trials"]}
    for number, run in runs.items():
        info = json.loads((run / "run.json").read_text())
        assert info["status"] == "completed"
        assert info["tune"]["study"] == "tune_smoke" and info["tune"]["trial"] == number
    best = Path(first["best_spec"])
    assert best == out / "tune_smoke" / "tune_smoke.best.yaml"
    resolved = yaml.safe_load(best.read_text())
    assert "tune" not in resolved and resolved["model"]["layers"][0]["units"] == first["best"]["params"]["model.layers[0].units"]
    assert load_spec(best).training.learning_rate == pytest.approx(first["best"]["params"]["training.learning_rate"])  # `seqcli train` takes it
    again = run_tune(out, 3)  # the same command: the study is already full
    assert again["ran_here"] == [] and again["trials"] == first["trials"]
    more = run_tune(out, 4)
    assert more["finished"] == 4 and more["ran_here"] == [3]
    assert "importances" in more and more["importance_note"].startswith("Parameter importances need at least 5 completed trials")


@pytest.mark.slow  # two tunings: the refusal's message is also a row of the bad-input catalogue
def test_a_study_from_another_spec_is_refused_unless_new_study(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    run_tune(out, 1)
    db = out / "tune_smoke" / "tune.db"
    before = db.read_bytes()
    result = runner.invoke(app, ["tune", str(TUNE_SMOKE), "--trials", "2", "--quiet", *tiny(out, "--set", "training.batch_size=4")])
    assert result.exit_code == 1
    assert "made from a different spec: `training.batch_size` was 8, now 4" in result.stderr and "--new-study" in result.stderr
    assert db.read_bytes() == before  # the study is untouched
    fresh = run_tune(out, 1, "--set", "training.batch_size=4", "--new-study")
    assert fresh["study"] == "tune_smoke-2" and fresh["finished"] == 1
    assert run_tune(out, 1, "--study", "tune_smoke")["finished"] == 1  # the first study is still there, with its trial


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")  # the test's own study.ask() makes the dead trial
@pytest.mark.slow  # trains trials
def test_a_trial_of_a_killed_tuner_is_failed_and_retried(tmp_path: Path) -> None:
    """What `kill -9` leaves: a RUNNING trial whose process is gone. The next run fails it, retries its values, and ends
    with exactly the asked number of finished trials (the real kill -9 is test_kill_9_then_rerun, marked slow)."""
    import optuna

    out = tmp_path / "runs"
    search = load_search(TUNE_SMOKE, [f"output.dir={out}", "training.epochs=2"])
    url = tune.storage_url(search.spec, None)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    with tune._quiet_optuna():
        storage = tune.open_storage(url)
        study = tune._study(storage, url, search, name=None, new_study=False, sampler=None, pruner=None)
        trial = study.ask({"model.layers[0].units": optuna.distributions.CategoricalDistribution([4, 8, 16])})
        trial.suggest_categorical("model.layers[0].units", [4, 8, 16])
        trial.set_user_attr("host", __import__("socket").gethostname())
        trial.set_user_attr("pid", int(dead.stdout))
    result = run_tune(out, 2)
    states = {row["number"]: row["state"] for row in result["trials"]}
    assert states[0] == "fail" and result["finished"] == 2
    retried = [row for row in result["trials"] if row["retry_of"] == 0]
    assert len(retried) == 1 and retried[0]["params"]["model.layers[0].units"] == trial.params["model.layers[0].units"]


@pytest.mark.slow
def test_kill_9_then_rerun_continues_the_same_study(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    command = [sys.executable, "-m", "seqcli", "tune", str(TUNE_SMOKE), "--trials", "3", "--quiet", "--no-prune", "--set", f"output.dir={out}", "--set", "training.epochs=40"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and len(list(out.glob("tune_smoke/2*/"))) < 2:  # the second trial has started
        time.sleep(0.5)
    time.sleep(2)
    process.kill()
    process.wait()
    again = subprocess.run([*command, "--json"], cwd=ROOT, capture_output=True, text=True, env=env)
    assert again.returncode == 0, again.stderr
    result = json.loads(again.stdout)
    assert result["finished"] == 3
    killed = [row for row in result["trials"] if row["state"] == "fail"]
    assert len(killed) == 1 and any(row["retry_of"] == killed[0]["number"] for row in result["trials"])
    assert json.loads((Path(killed[0]["run"]) / "run.json").read_text())["status"] == "failed"


# --------------------------------------------------------------------------- two workers, one PostgreSQL study

POSTGRES_URL = os.environ.get("SEQCLI_TEST_POSTGRES_URL")


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_URL, reason="needs a PostgreSQL server: set SEQCLI_TEST_POSTGRES_URL=postgresql://USER:PASSWORD@HOST:PORT/DB (.ci/run starts one)")
def test_two_workers_fill_one_postgresql_study_exactly(tmp_path: Path) -> None:
    from urllib.parse import urlsplit

    assert POSTGRES_URL is not None
    trials, study = 8, f"two-workers-{os.getpid()}-{time.time_ns()}"
    password = urlsplit(POSTGRES_URL).password or "(none)"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    started = time.perf_counter()
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "seqcli", "tune", str(TUNE_SMOKE), "--trials", str(trials), "--storage", POSTGRES_URL, "--study", study, "--json",
             "--set", f"output.dir={tmp_path / f'worker{i}'}", "--set", "training.epochs=2"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
        for i in range(2)
    ]
    outputs = [w.communicate(timeout=600) for w in workers]
    seconds = time.perf_counter() - started
    for worker, (stdout, stderr) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, stderr
        assert password not in stdout + stderr
    results = [json.loads(stdout) for stdout, _ in outputs]
    finished = {row["number"] for row in results[0]["trials"] if row["state"] in ("complete", "pruned")}
    assert len(finished) == trials and all(r["finished"] == trials for r in results)  # exact, seen from both
    ran = [set(r["ran_here"]) for r in results]
    assert not ran[0] & ran[1], "a trial ran in both workers"
    assert finished <= ran[0] | ran[1], "a finished trial that no worker ran"
    assert results[0]["best"]["number"] == results[1]["best"]["number"] and results[0]["best"] == results[1]["best"]
    for worker_index, r in enumerate(results):
        for number in r["ran_here"]:
            row = next(row for row in r["trials"] if row["number"] == number)
            if row["state"] == "surplus":
                continue
            info = (Path(row["run"]) / "run.json").read_text()
            assert json.loads(info)["tune"]["trial"] == number and password not in info
            assert Path(row["run"]).is_relative_to(tmp_path / f"worker{worker_index}")
    print(f"\n{trials} trials in {seconds:.1f} s; per worker: {[len(r) for r in ran]}; surplus: "
          f"{sum(row['state'] == 'surplus' for row in results[0]['trials'])}; best trial {results[0]['best']['number']}")
