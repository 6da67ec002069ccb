"""A fresh Python process on one Keras backend that runs the tests' jobs in turn: `import tensorflow` is paid once.

The tests run on one backend in-process (see conftest.py); what they run on the other one goes to a worker
(tests/background.py), instead of one subprocess per command. A job is Python code, run with ``argv`` bound,
whose printed output comes back (:data:`CLI_JOB` runs a seqcli command through the real CLI). Jobs are queued:
:meth:`Worker.submit` returns at once, :meth:`Job.result` waits for the job, so the worker works while the suite goes on.

``python -m tests.worker BACKEND PARENT_PID`` is the worker's side: it fixes the backend, imports Keras, then reads one job per
line on stdin and answers each with one line on its original stdout (stray prints go to stderr); it stops when stdin
ends, or before the next job once the test session (PARENT_PID) is gone.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import threading
import traceback
from collections import deque
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CLI_JOB = """
import json, traceback
from typer.testing import CliRunner
from seqcli.cli import app
result = CliRunner().invoke(app, argv)
crash = result.exception if result.exception is not None and not isinstance(result.exception, SystemExit) else None
print(json.dumps({"exit_code": result.exit_code, "stdout": result.stdout, "stderr": result.stderr,
                  "exception": "".join(traceback.format_exception(crash)) if crash else None}))
"""


@dataclass(frozen=True)
class CliResult:
    """What `seqcli ARGS` did in the worker: like Typer's ``Result``."""

    exit_code: int
    stdout: str
    stderr: str
    exception: str | None  # the traceback of an unexpected exception

    @property
    def output(self) -> str:
        return self.stdout + self.stderr + (self.exception or "")


class Job:
    """One queued job; :meth:`result` waits for what it printed."""

    def __init__(self, worker: Worker, what: str) -> None:
        self.worker, self.what = worker, what
        self._done = threading.Event()
        self._printed: str | None = None
        self._error: str | None = None

    def finish(self, printed: str | None, error: str | None) -> None:
        self._printed, self._error = printed, error
        self._done.set()

    def result(self) -> str:
        """What the job printed. An error in it, or the worker's death, fails the test with the traceback."""
        self._done.wait()
        if self._error is not None:
            raise AssertionError(f"{self.what} failed in the {self.worker.backend} worker:\n{self._error}")
        assert self._printed is not None
        return self._printed


class Worker:
    """One worker process on ``backend``; ``env`` is its environment (without ``KERAS_BACKEND``: the worker sets it)."""

    def __init__(self, backend: str, env: dict[str, str], log: Path) -> None:
        self.backend, self.log = backend, log
        self._stderr = open(log, "w")  # noqa: SIM115 - closed in close()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.worker", backend, str(os.getpid())], cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True
        )
        self._writing = threading.Lock()  # a job is queued and sent as one step, so that replies come in the queue's order
        self._pending: deque[Job] = deque()  # sent, not answered yet
        self._exited: str | None = None  # why the worker is gone, once it is
        threading.Thread(target=self._read_replies, name=f"{backend}-worker-replies", daemon=True).start()

    def submit(self, code: str, *argv: object, what: str = "a job") -> Job:
        """Queue ``code``, to run in the worker with ``argv`` (as strings) bound; returns at once. ``what``: the job, for messages."""
        queued = Job(self, what)
        with self._writing:
            if self._exited is not None:
                queued.finish(None, self._exited)
                return queued
            self._pending.append(queued)
            try:
                assert self._process.stdin is not None
                self._process.stdin.write(json.dumps({"code": code, "argv": [str(a) for a in argv]}) + "\n")
                self._process.stdin.flush()
            except (BrokenPipeError, ValueError):
                pass  # the worker is gone: the reply reader fails every pending job
        return queued

    def _read_replies(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            answer = json.loads(line)
            self._pending.popleft().finish(answer["stdout"], answer["error"])
        self._process.wait()
        with self._writing:
            self._exited = f"the worker exited ({self._process.returncode}); its stderr:\n{self.log.read_text()}"
            while self._pending:
                self._pending.popleft().finish(None, self._exited)

    def close(self) -> None:
        """Stop the worker: at once if jobs are still queued (nobody waits for them any more), else when it has read its input's end."""
        if self._pending:
            self._process.kill()
        elif self._process.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self._process.stdin.close()
        try:
            self._process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._stderr.close()


def main() -> None:
    from seqcli import backend

    name, parent = sys.argv[1], int(sys.argv[2])
    backend.use_backend(name)
    backend.import_keras()
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything printed outside a job goes to stderr, not into the replies
    for line in sys.stdin:
        if os.getppid() != parent:
            break  # the test session is gone: the jobs still queued are nobody's
        job = json.loads(line)
        printed, error = io.StringIO(), None
        try:
            with contextlib.redirect_stdout(printed):
                exec(compile(job["code"], "<job>", "exec"), {"__name__": "__job__", "argv": job["argv"]})
        except BaseException:
            error = traceback.format_exc()
        replies.write(json.dumps({"stdout": printed.getvalue(), "error": error}) + "\n")
        replies.flush()


if __name__ == "__main__":
    main()
