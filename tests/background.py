"""Work that runs beside the suite, in worker processes: the other Keras backend, and fresh processes.

The suite runs on one backend in its own process (conftest.py). What has to run elsewhere (trainings on the other
backend, a fresh process's choice of backend, JAX's compile cache across processes) costs seconds of
`import tensorflow` per fresh process, and JAX compiles for seconds more. Here it runs in one worker process per
backend (tests/worker.py), which pays the import once. The work is queued when the session starts, for the selected
tests that use it (:func:`start_background_work`), and those tests run last (:func:`pytest_collection_modifyitems`):
on two cores the work overlaps the rest of the suite.

Declare such work with :func:`background`: a session fixture whose value is a :class:`Pending` (``.result()`` waits
for it), or holds some. conftest.py imports the fixtures and hooks defined here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import pytest

from tests.worker import CLI_JOB, CliResult, Job, Worker

ROOT = Path(__file__).resolve().parent.parent
SMOKE_SPEC = ROOT / "experiments" / "smoke.yaml"
SMOKE_TEST = ROOT / "data" / "smoke" / "test.csv"

os.environ.setdefault("KERAS_BACKEND", "tensorflow")  # as conftest.py: the backend of the tests' own process
SESSION = os.environ["KERAS_BACKEND"]
OTHER = "jax" if SESSION == "tensorflow" else "tensorflow"

T = TypeVar("T")


class Pending(Generic[T]):
    """Work under way; :meth:`result` waits for it (once) and gives its value."""

    def __init__(self, wait: Callable[[], T]) -> None:
        self._wait = wait
        self._value: list[T] = []

    def result(self) -> T:
        if not self._value:
            self._value.append(self._wait())
        return self._value[0]


def fresh_env(**extra: str) -> dict[str, str]:
    """The environment of a fresh seqcli process: without ``$KERAS_BACKEND``, so that it picks its backend itself."""
    return {key: value for key, value in os.environ.items() if key != "KERAS_BACKEND"} | extra


def only_run(folder: Path) -> Path:
    """The one run directory in ``folder`` (an output.dir's experiment folder)."""
    (run,) = folder.iterdir()
    return run


# --------------------------------------------------------------------------- declaring background work


@dataclass(frozen=True)
class Context:
    """What a :func:`background` factory gets: workers, temporary folders, and the other background work."""

    request: pytest.FixtureRequest

    def worker(self, backend: str) -> Worker:
        return self.request.getfixturevalue("worker")(backend)

    def mktemp(self, name: str) -> Path:
        return self.request.getfixturevalue("tmp_path_factory").mktemp(name)

    def started(self, name: str) -> Any:
        """The value of the background fixture ``name``, started now if it is not yet."""
        return _start(name, self.request)


_FACTORIES: dict[str, Callable[[Context], Any]] = {}  # in the order declared: the order the work is queued in
_STARTED: dict[str, Any] = {}


def background(factory: Callable[[Context], T]) -> Any:
    """Declare a session fixture named like ``factory``, which queues work in a worker and returns what waits for it.
    The work starts with the session when a selected test uses the fixture, and those tests run at the end."""
    name = factory.__name__
    assert name not in _FACTORIES, f"two background fixtures named {name}"
    _FACTORIES[name] = factory

    def fixture(request: pytest.FixtureRequest) -> T:
        return _start(name, request)

    fixture.__doc__ = factory.__doc__
    return pytest.fixture(scope="session", name=name)(fixture)


def _start(name: str, request: pytest.FixtureRequest) -> Any:
    if name not in _STARTED:
        _STARTED[name] = _FACTORIES[name](Context(request))
    return _STARTED[name]


@pytest.fixture(scope="session", autouse=True)
def start_background_work(request: pytest.FixtureRequest) -> Iterator[None]:
    """Queue the work of every background fixture a selected test uses, before the first test runs."""
    used = {name for item in request.session.items for name in getattr(item, "fixturenames", ())}
    for name in _FACTORIES:
        if name in used:
            _start(name, request)
    yield
    _STARTED.clear()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests that use background work run at the end, in their order, so that the work has had the rest of the suite's time."""
    items.sort(key=lambda item: any(name in _FACTORIES for name in getattr(item, "fixturenames", ())))


# --------------------------------------------------------------------------- the workers


@pytest.fixture(scope="session")
def jax_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``$SEQCLI_CACHE_DIR`` of the workers: JAX keeps their compiled programs in its ``jax`` folder."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def worker(tmp_path_factory: pytest.TempPathFactory, jax_cache: Path) -> Iterator[Callable[[str], Worker]]:
    """``worker(backend)``: one fresh process on ``backend`` for the whole session, started on first use, that runs
    the jobs queued to it in turn (tests/worker.py). JAX caches its compiled programs in ``jax_cache``."""
    workers: dict[str, Worker] = {}

    def get(backend: str) -> Worker:
        if backend not in workers:
            log = tmp_path_factory.mktemp(f"worker-{backend}") / "stderr.txt"
            workers[backend] = Worker(backend, fresh_env(SEQCLI_CACHE_DIR=str(jax_cache)), log)
        return workers[backend]

    yield get
    for started in workers.values():
        started.close()


# A CLI job on a run that an earlier job makes: argv[0] is the folder it appears in, "RUN" in the rest stands for it.
CLI_ON_RUN = (
    """
from pathlib import Path
(run,) = Path(argv[0]).iterdir()
argv = [str(run) if a == "RUN" else a for a in argv[1:]]
"""
    + CLI_JOB
)

# Trains through the CLI and lists what the training added to the JAX compile cache (none on TensorFlow).
TRAIN_AND_LIST_CACHE = """
import json, os
from pathlib import Path
from typer.testing import CliRunner
from seqcli.cli import app
folder = Path(os.environ["SEQCLI_CACHE_DIR"]) / "jax"
listing = lambda: {p.name for p in folder.iterdir()} if folder.exists() else set()
before = listing()
result = CliRunner().invoke(app, argv)
print(json.dumps({"exit_code": result.exit_code, "output": result.output, "added": sorted(listing() - before)}))
"""


@dataclass(frozen=True)
class WorkerRun:
    """A completed run a worker trained."""

    path: Path  # the run directory
    compiled: list[str]  # the compiled programs its training added to the JAX cache (none on TensorFlow)


class Training(Pending[WorkerRun]):
    """`seqcli train SPEC --quiet --backend BACKEND --set ...` queued in ``worker`` (on BACKEND); its run will be the one directory in ``out/experiment``."""

    def __init__(self, worker: Worker, spec: Path, out: Path, experiment: str, *settings: str) -> None:
        self.worker, self.folder = worker, out / experiment
        sets = [a for setting in [*settings, f"output.dir={out}"] for a in ("--set", setting)]
        job = worker.submit(TRAIN_AND_LIST_CACHE, "train", spec, "--quiet", "--backend", worker.backend, *sets, what=f"training {spec.name}")

        def wait() -> WorkerRun:
            done = json.loads(job.result())
            assert done["exit_code"] == 0, done["output"]
            run = only_run(self.folder)
            assert json.loads((run / "run.json").read_text())["versions"]["backend"] == worker.backend
            return WorkerRun(run, done["added"])

        super().__init__(wait)

    def cli_on_run(self, *args: object) -> Pending[CliResult]:
        """`seqcli ARGS` in the same worker once the training is done, "RUN" in ``args`` standing for its run directory."""
        job = self.worker.submit(CLI_ON_RUN, self.folder, *args, what=f"`seqcli {args[0]}` on {self.folder.name}")
        return Pending(lambda: cli_result(job))


def cli_result(job: Job) -> CliResult:
    return CliResult(**json.loads(job.result()))


# --------------------------------------------------------------------------- the other backend (tests/test_backends.py)


@background
def smoke_on_other(ctx: Context) -> Training:
    """experiments/smoke.yaml (2 epochs, like conftest's ``smoke_run``) trained through the CLI in the other backend's worker."""
    return Training(ctx.worker(OTHER), SMOKE_SPEC, ctx.mktemp(f"smoke-{OTHER}"), "smoke", "training.epochs=2")


@background
def named_on_other(ctx: Context) -> Training:
    """experiments/smoke.yaml (1 epoch) with `output.name: my expérience`, trained through the CLI in the other backend's worker."""
    return Training(ctx.worker(OTHER), SMOKE_SPEC, ctx.mktemp(f"named-{OTHER}"), "my expérience", "training.epochs=1", "output.name=my expérience")


@background
def smoke_on_jax(ctx: Context) -> Training:
    """The same on JAX, in the JAX worker: ``smoke_on_other`` when the other backend is JAX."""
    if OTHER == "jax":
        return ctx.started("smoke_on_other")
    return Training(ctx.worker("jax"), SMOKE_SPEC, ctx.mktemp("smoke-jax"), "smoke", "training.epochs=2")


# `python -m seqcli ARGV` in a fresh process (without $KERAS_BACKEND), started by a worker so that it runs after the
# jobs queued before it, not beside them; with the JAX compile cache's files (name: modification time) before and after.
FRESH_PROCESS = """
import json, os, subprocess, sys
from pathlib import Path
folder = Path(os.environ["SEQCLI_CACHE_DIR"]) / "jax"
listing = lambda: {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} if folder.exists() else {}
before = listing()
env = {key: value for key, value in os.environ.items() if key != "KERAS_BACKEND"}
done = subprocess.run([sys.executable, "-m", "seqcli", *argv], capture_output=True, text=True, env=env)
print(json.dumps({"returncode": done.returncode, "stdout": done.stdout, "stderr": done.stderr, "before": before, "after": listing()}))
"""


@dataclass(frozen=True)
class FreshProcess:
    returncode: int
    stdout: str
    stderr: str
    before: dict[str, int]  # the JAX compile cache's files before the process ran, with their modification times (ns)
    after: dict[str, int]  # and after it


def fresh_process(worker: Worker, *args: object) -> Pending[FreshProcess]:
    """`seqcli ARGS` in a fresh process, queued in ``worker`` (it inherits the worker's compile cache)."""
    job = worker.submit(FRESH_PROCESS, *args, what=f"`seqcli {args[0]}` in a fresh process")
    return Pending(lambda: FreshProcess(**json.loads(job.result())))


@background
def jax_cache_reuse(ctx: Context) -> tuple[Path, Pending[FreshProcess]]:
    """``(folder, process)``: ``smoke_on_jax``'s training again, in a fresh process that the JAX worker starts once that
    training is done, with the same compile cache; its run will be the one directory in ``folder``."""
    ctx.started("smoke_on_jax")
    out = ctx.mktemp("smoke-jax-again")
    return out / "smoke", fresh_process(ctx.worker("jax"), "train", SMOKE_SPEC, "--quiet", "--backend", "jax", "--set", "training.epochs=2", "--set", f"output.dir={out}")


@background
def smoke_predicted_there(ctx: Context) -> Pending[CliResult]:
    """`seqcli predict RUN data/smoke/test.csv --format json` on ``smoke_on_other``, in the worker that trained it: on the run's backend."""
    training: Training = ctx.started("smoke_on_other")
    return training.cli_on_run("predict", "RUN", SMOKE_TEST, "--format", "json")


# Epoch e must train on plan(seed, e) on JAX: a spy on the padding of batches records the rows each training batch got.
JAX_PLANS = """
import json
from seqcli import batching, train
from seqcli.spec import load_spec

served = []
original = batching.Packed.batch
def spy(self, rows, width):
    served.append(sorted(rows.tolist()))
    return original(self, rows, width)
batching.Packed.batch = spy
overrides = ["backend=jax", "training.epochs=3", "training.early_stopping=null", "training.monitor=loss", "data.validation_split=0", "data.test=null", "output.dir=" + argv[1]]
try:
    prepared = train.prepare(load_spec(argv[0], overrides))
    train.fit(prepared)
finally:
    batching.Packed.batch = original  # the worker runs other jobs after this one
split, prep, spec = prepared.splits["train"], prepared.prep, prepared.spec
plans = [batching.train_plan(split.lengths, prep.boundaries, prep.maxlen, spec.training.batch_size, spec.seed, e, True, few_widths=True) for e in range(3)]
expected = [sorted(rows.tolist()) for plan in plans for rows in plan.batches]
print(json.dumps({"served": served[-len(expected):], "expected": expected}))
"""


@background
def jax_plans(ctx: Context) -> Pending[dict[str, Any]]:
    """``{"served": ..., "expected": ...}``: the rows of the batches the smoke spec's 3 epochs trained on with train.fit in the JAX worker, and those of its plans."""
    job = ctx.worker("jax").submit(JAX_PLANS, SMOKE_SPEC, ctx.mktemp("plans"), what="training with a spy on the batches")
    return Pending(lambda: json.loads(job.result().strip().splitlines()[-1]))


@background
def text_in_a_fresh_process(ctx: Context) -> Pending[FreshProcess]:
    """`seqcli inspect-shapes data/stdlib_lines/predict.txt --json` in a fresh process without $KERAS_BACKEND (the first
    thing it does with Keras is tokenizing), started by the other backend's worker."""
    return fresh_process(ctx.worker(OTHER), "inspect-shapes", ROOT / "data" / "stdlib_lines" / "predict.txt", "--json")
