"""The warm executor (clients/warm_executor/) against Flower's own SuperNode Runtime API.

A SuperNode without a SuperLink: Flower's NodeState and Runtime HTTP API
(what ``flower-supernode`` serves) run in this process on loopback; tasks are
put into the NodeState as the SuperNode does when a message arrives, for a
small test ClientApp shipped as a real FAB. ``fedavg-warm-executor`` runs as a
separate process, as beside a real SuperNode, and must: run a task in a forked
child of itself, through Flower's ClientApp runtime; give Flower's error reply
for a task that raises, and CLIENT_APP_CRASHED at once (not after the token
expires) for one that is SIGKILLed, and keep going; leave no zombies; keep its
memory flat over 200 tasks. A test fails, naming the internal, if a Flower
internal the executor hooks into moves; another, if a module of the package
other than flwr_internals imports flwr, or one imports anything but the
standard library, flwr and the package itself (the app image runs it alone).
"""

from __future__ import annotations

import ast
import hashlib
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from flwr.app import Context, Message, RecordDict
from flwr.cli.build import build_fab_from_disk
from flwr.common.constant import ErrorCode
from flwr.supercore.constant import TaskType
from flwr.supercore.fab import Fab
from flwr.supercore.object_store import ObjectStoreFactory
from flwr.supercore.run import Run
from flwr.supercore.task_identity import TaskIdentity
from flwr.supernode.main import create_app
from flwr.supernode.nodestate import NodeStateFactory
from flwr.supernode.start_client_internal import _insert_message

from clients import warm_executor
from clients.warm_executor import child, warming
from tests.conftest import REPO

PACKAGE = REPO / "clients" / "warm_executor"

PORT = int(os.environ.get("FEDAVG_WARM_EXECUTOR_TEST_PORT", "9790"))
NODE_ID = 1
RUN_ID = 7
RUN_V2 = 8  # a run of the same app with other code (VERSION = "v2")
NODE_CONFIG = {"data-path": "/data/node-1"}

APP = """
import os, signal
from pathlib import Path
from flwr.app import Message, RecordDict
from flwr.clientapp import ClientApp

app = ClientApp()
OUT = Path(os.environ["WARMTEST_OUT"])
VERSION = "v1"
IMPORTED_BY = os.getpid()  # the process that imported this module

@app.query("pid")
def pid(msg, context):
    facts = f"{os.getpid()} {os.getppid()} {IMPORTED_BY} {VERSION}"
    (OUT / f"{msg.metadata.message_id}.pid").write_text(facts)
    return Message(RecordDict(), reply_to=msg)

PREPARED = []  # warm_executor_prepare's calls in the process that imported this module

def warm_executor_prepare(run_config, node_config):
    PREPARED.append((os.getpid(), dict(run_config), dict(node_config)))

@app.query("prepared")
def prepared(msg, context):
    (OUT / f"{msg.metadata.message_id}.prepared").write_text(repr(PREPARED))
    return Message(RecordDict(), reply_to=msg)

@app.query("noop")
def noop(msg, context):
    return Message(RecordDict(), reply_to=msg)

@app.query("raise")
def boom(msg, context):
    raise ValueError("boom from the app")

@app.query("kill")
def kill(msg, context):
    os.kill(os.getpid(), signal.SIGKILL)
"""

PYPROJECT = """
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"
[project]
name = "warmtest"
version = "1.0.0"
description = "a test ClientApp"
license = "Apache-2.0"
dependencies = ["flwr>=1.42"]
[tool.hatch.build.targets.wheel]
packages = ["."]
[tool.flwr.app]
publisher = "fedavg-tests"
[tool.flwr.app.components]
serverapp = "warmtest_app:app"
clientapp = "warmtest_app:app"
"""


@dataclass
class FakeSuperNode:
    """Flower's NodeState and Runtime API, fed with tasks by hand."""

    state: Any
    store: Any
    fab_hashes: dict[int, str]
    out: Path

    def send(self, action: str, run_id: int = RUN_ID) -> str:
        """Queue a ``query.<action>`` message and its task, as a SuperNode does on receipt."""
        TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = run_id, 0, 1
        msg = Message(RecordDict(), dst_node_id=NODE_ID, message_type=f"query.{action}")
        _insert_message(msg, self.state, self.store)
        self.state.create_task(
            task_type=TaskType.CLIENT_APP, run_id=run_id, fab_hash=self.fab_hashes[run_id]
        )
        return msg.metadata.message_id

    def facts(self, message_id: str) -> tuple[int, int, int, str]:
        """What the test app's ``pid`` handler wrote: pid, parent, importer, version."""
        pid, ppid, importer, version = (self.out / f"{message_id}.pid").read_text().split()
        return int(pid), int(ppid), int(importer), version

    def reply(self, message_id: str, timeout: float = 120.0) -> Message:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for reply in self.state.get_messages_legacy(run_ids=[RUN_ID, RUN_V2], is_reply=True):
                if reply.metadata.reply_to_message_id == message_id:
                    return reply  # type: ignore[no-any-return]
            time.sleep(0.05)
        raise AssertionError(f"no reply to {message_id} within {timeout} s")


@pytest.fixture(scope="module")
def supernode(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeSuperNode]:
    root = tmp_path_factory.mktemp("warm")
    factory = NodeStateFactory(objectstore_factory=ObjectStoreFactory())
    state = factory.state()
    state.set_node_id(NODE_ID)
    fab_hashes = {}
    for series, (run_id, version) in enumerate([(RUN_ID, "v1"), (RUN_V2, "v2")]):
        app_dir = root / f"app-{version}"
        app_dir.mkdir()
        (app_dir / "warmtest_app.py").write_text(APP.replace('"v1"', f'"{version}"'))
        (app_dir / "pyproject.toml").write_text(PYPROJECT)
        content = build_fab_from_disk(app_dir)
        fab = Fab(hashlib.sha256(content).hexdigest(), content, {})
        run = Run.create_empty(run_id)
        run.fab_id, run.fab_version, run.fab_hash = "fedavg-tests/warmtest", "1.0.0", fab.hash_str
        run.series_id = series
        state.store_run(run)
        state.store_fab(fab)
        state.set_run_series_context(
            series,
            Context(run_id, NODE_ID, NODE_CONFIG, RecordDict(), run_config={"v": series}),
        )
        fab_hashes[run_id] = fab.hash_str
    server = uvicorn.Server(
        uvicorn.Config(create_app(state_factory=factory), host="127.0.0.1", port=PORT, workers=1)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive(), "the Runtime API did not start"
        time.sleep(0.05)
    yield FakeSuperNode(state, factory.objectstore_factory.store(), fab_hashes, root / "out")
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def executor(supernode: FakeSuperNode) -> Iterator[subprocess.Popen[str]]:
    supernode.out.mkdir()
    env = {
        **os.environ,
        "WARMTEST_OUT": str(supernode.out),
        "FLWR_HOME": str(supernode.out.parent / "flwr_home"),
        "FLWR_SUPEREXEC_TASK_POLL_INTERVAL": "0.05",
    }
    log = (supernode.out.parent / "executor.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "clients.warm_executor", "--insecure", "--preload", "numpy",
         "--runtime-api-address", f"127.0.0.1:{PORT}"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    yield process
    process.terminate()
    process.wait(timeout=30)
    log.close()


def children_of(pid: int) -> list[tuple[int, str]]:
    """(pid, state) of each child process of ``pid`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid:
            found.append((int(entry.name), fields[0]))
    return found


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def settle(pid: int, timeout: float = 10.0) -> list[tuple[int, str]]:
    """The executor's children once its running tasks have been reaped (or the timeout)."""
    deadline = time.monotonic() + timeout
    while (kids := children_of(pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return kids


def test_a_task_runs_in_a_forked_child_through_flowers_runtime(
    supernode: FakeSuperNode, executor: subprocess.Popen[str]
) -> None:
    message_id = supernode.send("pid")
    reply = supernode.reply(message_id)
    assert not reply.has_error(), reply.error
    child, parent, importer, version = supernode.facts(message_id)
    assert parent == executor.pid and child != executor.pid  # forked, not a new interpreter
    assert importer == child and version == "v1"  # the first task imports the app itself
    assert settle(executor.pid) == []  # reaped: no zombie left behind


def test_later_tasks_find_the_app_imported_and_another_fab_runs_its_own_code(
    supernode: FakeSuperNode, executor: subprocess.Popen[str]
) -> None:
    def run(run_id: int) -> tuple[int, int, int, str]:
        # A reply can arrive before its task's process is reaped, which is when the
        # executor imports the app: start each task once the previous one is gone.
        assert settle(executor.pid) == []
        message_id = supernode.send("pid", run_id)
        assert not supernode.reply(message_id).has_error()
        return supernode.facts(message_id)

    supernode.reply(supernode.send("noop"))  # the app of run 7 has been loaded once
    _, _, importer, version = run(RUN_ID)
    assert importer == executor.pid and version == "v1"  # imported once, in the executor
    # Same module names, other code: the warm v1 modules must not shadow the FAB's.
    child, _, importer, version = run(RUN_V2)
    assert version == "v2" and importer == child
    _, _, importer, version = run(RUN_V2)
    assert version == "v2" and importer == executor.pid
    _, _, _, version = run(RUN_ID)
    assert version == "v1"


def test_the_app_prepares_in_the_executor_once_per_run_and_node_for_later_tasks(
    supernode: FakeSuperNode, executor: subprocess.Popen[str]
) -> None:
    """``warm_executor_prepare`` (ours loads the node's data) runs in the executor after a
    completed task, once per (FAB, run config, node config), so later forks inherit it."""
    for _ in range(3):
        assert settle(executor.pid) == []
        supernode.reply(supernode.send("noop"))
    assert settle(executor.pid) == []
    message_id = supernode.send("prepared")
    assert not supernode.reply(message_id).has_error()
    calls = ast.literal_eval((supernode.out / f"{message_id}.prepared").read_text())
    assert calls == [(executor.pid, {"v": 0}, NODE_CONFIG)]


def test_a_raising_prepare_hook_leaves_the_tasks_to_load_for_themselves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[dict[str, Any]] = []

    def hook(run_config: dict[str, Any], node_config: dict[str, Any]) -> None:
        calls.append(run_config)
        raise OSError("data-path unreadable")

    module = type(sys)("fake_app")
    module.warm_executor_prepare = hook  # type: ignore[attr-defined]
    monkeypatch.setattr(warming, "_WARM_APP_DIR", [tmp_path])
    monkeypatch.setattr(warming, "_WARM_APP_MODULE", [module])
    monkeypatch.setattr(warming, "_PREPARED", [])
    warm_executor.prepare_for_tasks(tmp_path, {"seed": 1}, NODE_CONFIG)
    warm_executor.prepare_for_tasks(tmp_path, {"seed": 1}, NODE_CONFIG)  # tried once only
    warm_executor.prepare_for_tasks(tmp_path, {"seed": 2}, NODE_CONFIG)
    warm_executor.prepare_for_tasks(tmp_path / "other-fab", {"seed": 3}, NODE_CONFIG)
    assert calls == [{"seed": 1}, {"seed": 2}]
    assert "warm_executor_prepare of" in caplog.text and "data-path unreadable" in caplog.text


def test_a_raising_task_gets_flowers_error_reply_and_the_executor_goes_on(
    supernode: FakeSuperNode, executor: subprocess.Popen[str]
) -> None:
    reply = supernode.reply(supernode.send("raise"))
    assert reply.has_error()
    assert reply.error.code == ErrorCode.CLIENT_APP_RAISED_EXCEPTION
    assert "boom from the app" in (reply.error.reason or "")
    assert executor.poll() is None
    assert not supernode.reply(supernode.send("noop")).has_error()


def test_a_killed_task_gets_the_crash_reply_at_once_and_the_executor_goes_on(
    supernode: FakeSuperNode, executor: subprocess.Popen[str]
) -> None:
    # The SuperNode's own answer comes only when the task's heartbeat expires
    # (about a minute); the executor answers as soon as it reaps the child.
    reply = supernode.reply(supernode.send("kill"), timeout=20.0)
    assert reply.has_error()
    assert reply.error.code == ErrorCode.CLIENT_APP_CRASHED
    assert "SIGKILL" in (reply.error.reason or "")
    assert executor.poll() is None
    assert settle(executor.pid) == []
    assert not supernode.reply(supernode.send("noop")).has_error()


def test_memory_stays_flat_and_no_zombies_over_200_tasks(
    supernode: FakeSuperNode, executor: subprocess.Popen[str]
) -> None:
    def batch(n: int) -> None:
        for _ in range(n):
            assert not supernode.reply(supernode.send("noop")).has_error()

    batch(20)  # warm-up: allocator pools, first imports
    settle(executor.pid)
    before, fds_before = rss_kib(executor.pid), open_fds(executor.pid)
    batch(200)
    assert settle(executor.pid) == []
    after, fds_after = rss_kib(executor.pid), open_fds(executor.pid)
    # A leak of the per-task state (a task record, a message) would grow with every
    # task; 200 tasks may cost allocator noise, not megabytes. No pipe may stay open.
    assert after - before < 4096, (before, after)
    assert fds_after == fds_before


def test_the_flwr_internals_the_executor_hooks_into_are_where_it_expects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    warm_executor.check_flwr_internals()  # the real flwr: nothing moved
    from flwr.supernode.runtime import run_clientapp as runtime

    monkeypatch.delattr(runtime, "push_message")
    with pytest.raises(warm_executor.FlwrInternalMoved, match=r"run_clientapp\.push_message"):
        warm_executor.check_flwr_internals()
    monkeypatch.undo()

    def moved(runtime_api_address: str, token: str) -> None: ...

    monkeypatch.setattr(runtime, "run_clientapp", moved)
    wanted = r"run_clientapp\.run_clientapp.*insecure"
    with pytest.raises(warm_executor.FlwrInternalMoved, match=wanted):
        warm_executor.check_flwr_internals()


def test_containers_run_the_warm_executor_from_the_app_image() -> None:
    from tests.test_manifests import DOCKER, compose_config, dockerignored, manifests

    dockerfile = (DOCKER / "Dockerfile").read_text()
    assert "COPY --chown=app:app clients/warm_executor /app/warm_executor" in dockerfile
    assert "WORKDIR /app" in dockerfile  # where `python -m warm_executor` finds it
    rules = [
        ln.strip()
        for ln in (REPO / ".dockerignore").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    for module in PACKAGE.glob("*.py"):
        assert not dockerignored(str(module.relative_to(REPO)), rules), module
    assert dockerignored("clients/warm_executor/__pycache__/cli.cpython-311.pyc", rules)
    assert dockerignored("clients/app.py", rules)
    docs = dict(((d["kind"], d["metadata"]["name"]), d) for _, d in manifests())
    pod = docs[("StatefulSet", "supernode")]["spec"]["template"]["spec"]
    clientapp = next(c for c in pod["containers"] if c["name"] == "clientapp")
    assert clientapp["command"] == ["python", "-m", "warm_executor"]
    assert "workingDir" not in clientapp  # the image's, /app
    services = compose_config("compose.yml")["services"]
    for i in range(3):
        service = services[f"clientapp-{i}"]
        assert service["entrypoint"] == ["python", "-m", "warm_executor"]
        assert "working_dir" not in service  # the image's, /app
        assert service["command"][-1] == f"supernode-{i}:9094"
    assert "entrypoint" not in services["serverapp"]  # the ServerApp keeps Flower's SuperExec


def test_the_executor_runs_as_a_package_of_its_own_without_the_app(tmp_path: Path) -> None:
    # As in the app image: the package alone as /app/warm_executor, run from /app.
    shutil.copytree(
        PACKAGE, tmp_path / "warm_executor", ignore=shutil.ignore_patterns("__pycache__")
    )
    done = subprocess.run(
        [sys.executable, "-m", "warm_executor", "--help"],
        cwd=tmp_path, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "--runtime-api-address" in done.stdout


def test_only_flwr_internals_imports_flwr_and_the_package_needs_nothing_else() -> None:
    for path in sorted(PACKAGE.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level > 0:
                # The package's own modules, at import time only: start-up drops them from
                # sys.modules (clients/warm_executor/preload.py), so a later import would
                # load a second copy with state of its own.
                assert node in tree.body, (path.name, node.lineno)
                continue
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top == "flwr":
                    assert path.name == "flwr_internals.py", (path.name, name)
                else:
                    assert top in sys.stdlib_module_names, (path.name, name)


def test_a_task_asks_again_within_20_ms_for_objects_its_supernode_is_still_pulling(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A SuperNode creates the task before it has pulled the message's arrays; Flower's
    # client retries an "unavailable" object after 1 s, the start-up the warm executor cuts.
    from flwr.supernode.runtime import run_clientapp as runtime

    hooked = ("pull_task_input", "install_from_fab", "get_load_client_app_fn", "push_message")
    for name in (*hooked, "push_task_output"):
        monkeypatch.setattr(runtime, name, getattr(runtime, name))  # restored after the test
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(
        runtime, "pull_and_inflate_object_from_tree", lambda *a, **k: calls.append(k)
    )
    read_end, write_end = os.pipe()
    try:
        child._install_hooks(write_end)
        runtime.pull_and_inflate_object_from_tree("tree", "pull", "confirm", return_type=Message)
    finally:
        os.close(read_end)
        os.close(write_end)
    assert calls == [{"return_type": Message, "initial_backoff": 0.02, "backoff_cap": 0.1}]
