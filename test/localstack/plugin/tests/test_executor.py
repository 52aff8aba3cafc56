"""Unit tests of the executor's pure parts (the LocalStack suite covers the rest end to end).

Run: test/localstack/.venv/bin/python -m unittest discover -s test/localstack/plugin/tests
"""
import os
import tempfile
import unittest
from pathlib import Path

from haq_localstack.executor import build_node_env, error_payload, link_node_modules


class BuildNodeEnvTest(unittest.TestCase):
    def test_stringifies_lambda_variables_over_a_few_inherited_ones(self):
        env = build_node_env(
            {"AWS_LAMBDA_FUNCTION_TIMEOUT": 3, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": 128, "_HANDLER": "index.handler", "SKIP": None},
            Path("/code"),
            4567,
            None,
            {"PATH": "/bin", "HOME": "/root", "GATEWAY_LISTEN": "127.0.0.1:4566", "AWS_PROFILE": "prod"},
        )
        self.assertEqual(env["AWS_LAMBDA_FUNCTION_TIMEOUT"], "3")
        self.assertEqual(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "128")
        self.assertEqual(env["LAMBDA_TASK_ROOT"], "/code")
        self.assertEqual(env["HAQ_EXECUTOR_PORT"], "4567")
        self.assertEqual(env["PATH"], "/bin")
        self.assertNotIn("SKIP", env)
        # LocalStack's own settings and the host's AWS profile do not leak into the function.
        self.assertNotIn("GATEWAY_LISTEN", env)
        self.assertNotIn("AWS_PROFILE", env)
        self.assertNotIn("NODE_PATH", env)

    def test_appends_the_sdk_folder_to_node_path(self):
        env = build_node_env({"NODE_PATH": "/opt/nodejs"}, Path("/code"), 1, "/repo/node_modules", {})
        self.assertEqual(env["NODE_PATH"], os.pathsep.join(["/opt/nodejs", "/repo/node_modules"]))


class LinkNodeModulesTest(unittest.TestCase):
    def test_links_the_sdk_beside_the_code_once(self):
        with tempfile.TemporaryDirectory() as tmp:
            code = Path(tmp, "version", "code")
            code.mkdir(parents=True)
            sdk = Path(tmp, "node_modules")
            sdk.mkdir()
            link_node_modules(code, str(sdk))
            link_node_modules(code, str(sdk))  # idempotent
            link = code.parent / "node_modules"
            self.assertTrue(link.is_symlink())
            self.assertEqual(os.readlink(link), str(sdk))

    def test_does_nothing_without_an_sdk_folder(self):
        with tempfile.TemporaryDirectory() as tmp:
            code = Path(tmp, "code")
            code.mkdir()
            link_node_modules(code, None)
            self.assertFalse((code.parent / "node_modules").exists())


class ErrorPayloadTest(unittest.TestCase):
    def test_is_lambda_error_json(self):
        self.assertEqual(error_payload("Sandbox.Timedout", "Task timed out after 2.00 seconds"),
                         b'{"errorType": "Sandbox.Timedout", "errorMessage": "Task timed out after 2.00 seconds"}')


if __name__ == "__main__":
    unittest.main()
