"""plux plugin: registers the executor under the name `haq-node`.

Imported by LocalStack's plugin manager at start-up; the executor module (and so LocalStack's
Lambda internals) is only imported when the plugin is loaded.
"""
from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin


class NodeRuntimeExecutorPlugin(RuntimeExecutorPlugin):
    name = "haq-node"

    def load(self, *args, **kwargs):
        from haq_localstack.executor import NodeRuntimeExecutor

        return NodeRuntimeExecutor
