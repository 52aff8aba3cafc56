"""LocalStack runtime executor that runs a Node.js Lambda handler in a host process (no Docker).

LocalStack's Lambda service asks an executor to start an execution environment, send it
invocations and stop it (services/lambda_/invocation/runtime_executor.py). The Docker
executor runs AWS's runtime-init in a container; this one starts `node shim.mjs` on the host.
The shim speaks the same HTTP protocol as runtime-init (see shim.mjs):

  LocalStack -> shim   POST http://127.0.0.1:<port>/invoke {"invoke-id", "payload", ...}
  shim -> LocalStack   POST <LOCALSTACK_RUNTIME_ENDPOINT>/status/<runtime id>/ready | error
                       POST <...>/invocations/<request id>/logs, then /response or /error

What this class adds over the protocol: the function timeout (runtime-init enforces it in the
container; LocalStack itself waits 905 s), a respawn after a timeout or a crashed process, and
an AWS SDK v3 for bundles that leave `@aws-sdk/*` external (the Node.js runtime ships one).

Settings (environment of the LocalStack process):
  HAQ_LAMBDA_NODE           node binary (default: `node` on PATH)
  HAQ_LAMBDA_NODE_MODULES   a node_modules folder holding @aws-sdk/* (default: none)
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

import requests

from localstack import config
from localstack.services.lambda_.invocation.executor_endpoint import (
    ExecutorEndpoint,
    StatusErrorException,
)
from localstack.services.lambda_.invocation.lambda_models import FunctionVersion, InvocationResult
from localstack.services.lambda_.invocation.runtime_executor import RuntimeExecutor
from localstack.utils.net import get_free_tcp_port

LOG = logging.getLogger(__name__)

SHIM_PATH = Path(__file__).with_name("shim.mjs")
POLL_INTERVAL_S = 0.05
LOG_TAIL_LINES = 2000
# Variables of the LocalStack process that a Node process needs to run at all; everything
# else comes from LocalStack's Lambda environment (credentials, endpoint, function config).
INHERITED_VARS = ("PATH", "HOME", "LANG", "TMPDIR", "SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS")


def node_binary() -> str | None:
    return shutil.which(os.environ.get("HAQ_LAMBDA_NODE", "node"))


def error_payload(error_type: str, message: str) -> bytes:
    """The JSON body AWS Lambda returns for a failed invocation."""
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


def build_node_env(
    env_vars: dict, code_dir: Path, port: int, node_modules: str | None, parent_env: dict
) -> dict[str, str]:
    """The Node process environment: LocalStack's Lambda variables (stringified: memory size
    and timeout arrive as ints) over a few inherited ones, with the task root set to the code."""
    env = {k: parent_env[k] for k in INHERITED_VARS if k in parent_env}
    env.update({k: str(v) for k, v in env_vars.items() if v is not None})
    env["LAMBDA_TASK_ROOT"] = str(code_dir)
    env["HAQ_EXECUTOR_PORT"] = str(port)
    if node_modules:
        paths = [p for p in (env.get("NODE_PATH"), node_modules) if p]
        env["NODE_PATH"] = os.pathsep.join(paths)
    return env


def link_node_modules(code_dir: Path, node_modules: str | None) -> None:
    """Make `@aws-sdk/*` resolvable for ESM bundles too (NODE_PATH only serves require()):
    Node looks for node_modules in every parent folder of the code, so a link in the code's
    parent (LocalStack's per-version folder, removed with it) serves both module systems."""
    if not node_modules:
        return
    link = code_dir.parent / "node_modules"
    if link.exists() or link.is_symlink():
        return
    try:
        link.symlink_to(node_modules, target_is_directory=True)
    except FileExistsError:
        pass  # another environment of the same version linked it first


class NodeRuntimeExecutor(RuntimeExecutor):
    """One execution environment = one `node shim.mjs` process, respawned when it dies."""

    def __init__(self, id: str, function_version: FunctionVersion) -> None:
        super().__init__(id=id, function_version=function_version)
        self.port = get_free_tcp_port()
        self.executor_endpoint = ExecutorEndpoint(
            self.id, container_address="127.0.0.1", container_port=self.port
        )
        self.process: subprocess.Popen | None = None
        self.env: dict[str, str] = {}
        self.log_lines: deque[str] = deque(maxlen=LOG_TAIL_LINES)
        self.lock = threading.Lock()

    # --- lifecycle -------------------------------------------------------------------------
    def start(self, env_vars: dict[str, str]) -> None:
        runtime = str(self.function_version.config.runtime or "")
        if not runtime.startswith("nodejs"):
            raise StatusErrorException(
                f"haq-node runs nodejs* runtimes only, not {runtime!r}",
                payload=error_payload(
                    "Runtime.InvalidRuntime",
                    f"the haq-node executor runs nodejs* runtimes only, got {runtime!r}",
                ),
            )
        code_dir = self.function_version.config.code.get_unzipped_code_location()
        self.env = build_node_env(
            env_vars, code_dir, self.port, os.environ.get("HAQ_LAMBDA_NODE_MODULES"), os.environ
        )
        self.executor_endpoint.start()
        self._spawn()

    def _spawn(self) -> None:
        """Start the shim and block until it reports ready; raise with its error otherwise."""
        node = node_binary()
        if not node:
            raise StatusErrorException(
                "node not found",
                payload=error_payload("Runtime.NodeNotFound", "no node binary on PATH"),
            )
        self.executor_endpoint.startup_future = Future()
        self.process = subprocess.Popen(
            [node, str(SHIM_PATH)],
            cwd=self.env["LAMBDA_TASK_ROOT"],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() kills any children too
        )
        threading.Thread(
            target=self._pump_logs, args=(self.process,), daemon=True, name=f"haq-node-{self.id}"
        ).start()
        while True:
            try:
                self.executor_endpoint.startup_future.result(timeout=POLL_INTERVAL_S)
                return
            except FutureTimeout:
                if self.process.poll() is not None:
                    # exited before saying ready (e.g. a syntax error the shim could not report)
                    raise StatusErrorException(
                        "runtime exited during init",
                        payload=error_payload(
                            "Runtime.ExitError",
                            f"node exited with code {self.process.returncode} during init: "
                            + self._tail(20),
                        ),
                    )

    def _pump_logs(self, process: subprocess.Popen) -> None:
        for raw in process.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            self.log_lines.append(line)
            LOG.debug("[haq-node %s] %s", self.id, line)

    def _tail(self, n: int) -> str:
        return "\n".join(list(self.log_lines)[-n:])

    def _kill(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=5)

    def stop(self) -> None:
        with self.lock:
            self._kill()
        try:
            self.executor_endpoint.shutdown()
        except Exception as e:  # already unregistered
            LOG.debug("haq-node %s: endpoint shutdown: %s", self.id, e)

    # --- invocation ------------------------------------------------------------------------
    def invoke(self, payload: dict[str, str]) -> InvocationResult:
        timeout_s = float(self.function_version.config.timeout)
        request_id = payload["invoke-id"]
        with self.lock:
            if self.process is None or self.process.poll() is not None:
                LOG.info("haq-node %s: respawning the runtime", self.id)
                self._kill()
                self._spawn()
            endpoint = self.executor_endpoint
            endpoint.invocation_future = Future()
            endpoint.logs = None
            response = requests.post(
                f"http://127.0.0.1:{self.port}/invoke",
                json=payload,
                proxies={"http": "", "https": ""},
                timeout=30,
            )
            response.raise_for_status()
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    return endpoint.invocation_future.result(timeout=POLL_INTERVAL_S)
                except FutureTimeout:
                    pass
                if self.process.poll() is not None:
                    code = self.process.returncode
                    return InvocationResult(
                        request_id,
                        error_payload(
                            "Runtime.ExitError",
                            f"RequestId: {request_id} Error: Runtime exited with code {code}",
                        ),
                        is_error=True,
                        logs=self._tail(50),
                    )
                if time.monotonic() >= deadline:
                    # AWS kills the sandbox on timeout; the next invoke starts a fresh one.
                    self._kill()
                    return InvocationResult(
                        request_id,
                        error_payload("Sandbox.Timedout", f"Task timed out after {timeout_s:.2f} seconds"),
                        is_error=True,
                        logs=self._tail(50),
                    )

    # --- addresses and logs ----------------------------------------------------------------
    def get_address(self) -> str:
        return "127.0.0.1"

    def get_endpoint_from_executor(self) -> str:
        return "127.0.0.1"

    def get_runtime_endpoint(self) -> str:
        return (
            f"http://127.0.0.1:{config.GATEWAY_LISTEN[0].port}"
            f"{self.executor_endpoint.get_endpoint_prefix()}"
        )

    def get_logs(self) -> str:
        return "\n".join(self.log_lines)

    # --- per version -----------------------------------------------------------------------
    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        code = function_version.config.code
        if code:
            code.prepare_for_execution()
            link_node_modules(
                code.get_unzipped_code_location(), os.environ.get("HAQ_LAMBDA_NODE_MODULES")
            )

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        pass  # LocalStack removes the unzipped code folder (and our link in it) itself

    @classmethod
    def validate_environment(cls) -> bool:
        if not node_binary():
            LOG.warning("haq-node executor: no node binary found (set HAQ_LAMBDA_NODE)")
            return False
        return True
