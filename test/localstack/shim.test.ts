/**
 * The Node shim of the haq-node executor, without LocalStack: handler resolution, the error
 * shape, and one whole invocation against a fake runtime endpoint that records the protocol.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { tempDir } from '../helpers/tmp';
import { freePort, repoRoot } from './harness';

const shimPath = join(repoRoot, 'test/localstack/plugin/haq_localstack/shim.mjs');
const { resolveHandler, toErrorPayload } = (await import(shimPath)) as {
  resolveHandler: (handler: string, root: string) => { file: string; exportName: string };
  toErrorPayload: (err: unknown) => { errorType: string; errorMessage: string; trace: string[] };
};

const readBody = (req: IncomingMessage) =>
  new Promise<string>((ok) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => ok(Buffer.concat(chunks).toString()));
  });

describe('haq-node shim', () => {
  const tmp = tempDir('haq-shim');
  after(() => tmp.cleanup());

  it('resolves file.export to .js, .mjs or .cjs and names what is missing', () => {
    writeFileSync(join(tmp.dir, 'a.mjs'), 'export const handler = () => 1;');
    assert.deepEqual(resolveHandler('a.handler', tmp.dir), { file: join(tmp.dir, 'a.mjs'), exportName: 'handler' });
    assert.throws(() => resolveHandler('nope.handler', tmp.dir), { name: 'Runtime.ImportModuleError', message: /nope/ });
    assert.throws(() => resolveHandler('handler', tmp.dir), { name: 'Runtime.MalformedHandlerName' });
  });

  it('reports errors as AWS does, with errorType = err.name', () => {
    const err = new Error('budget too small');
    err.name = 'BudgetInfeasibleError';
    const payload = toErrorPayload(err);
    assert.equal(payload.errorType, 'BudgetInfeasibleError');
    assert.equal(payload.errorMessage, 'budget too small');
    assert.ok(payload.trace.length > 0);
    assert.deepEqual(toErrorPayload('plain'), { errorType: 'string', errorMessage: 'plain', trace: [] });
  });

  it('speaks the runtime protocol: ready, then logs and response for an invocation', async () => {
    writeFileSync(join(tmp.dir, 'index.mjs'), "export const handler = async (e, ctx) => { console.log('hi', e.n); return { twice: e.n * 2, id: ctx.awsRequestId }; };");
    const calls: Array<{ path: string; body: string }> = [];
    let onResponse: () => void = () => {};
    const responded = new Promise<void>((ok) => (onResponse = ok));
    const server = createServer(async (req, res) => {
      calls.push({ path: req.url!, body: await readBody(req) });
      res.writeHead(202).end();
      if (req.url!.endsWith('/response')) onResponse();
    });
    const lsPort = await freePort();
    await new Promise<void>((ok) => server.listen(lsPort, '127.0.0.1', ok));
    const shimPort = await freePort();
    const child = spawn(process.execPath, [shimPath], {
      cwd: tmp.dir,
      env: {
        PATH: process.env.PATH,
        LOCALSTACK_RUNTIME_ENDPOINT: `http://127.0.0.1:${lsPort}/_localstack_lambda/env1`,
        LOCALSTACK_RUNTIME_ID: 'env1',
        LAMBDA_TASK_ROOT: tmp.dir,
        HAQ_EXECUTOR_PORT: String(shimPort),
        _HANDLER: 'index.handler',
        AWS_LAMBDA_FUNCTION_TIMEOUT: '5',
      },
      stdio: 'ignore',
    });
    try {
      while (!calls.some((c) => c.path.endsWith('/status/env1/ready'))) await new Promise((r) => setTimeout(r, 50));
      const res = await fetch(`http://127.0.0.1:${shimPort}/invoke`, {
        method: 'POST',
        body: JSON.stringify({ 'invoke-id': 'req-1', 'invoked-function-arn': 'arn:x', payload: '{"n":21}', 'trace-id': 'Root=1' }),
      });
      assert.equal(res.status, 202);
      await responded;
      const paths = calls.map((c) => c.path);
      assert.deepEqual(paths, [
        '/_localstack_lambda/env1/status/env1/ready',
        '/_localstack_lambda/env1/invocations/req-1/logs',
        '/_localstack_lambda/env1/invocations/req-1/response',
      ]);
      assert.match(JSON.parse(calls[1].body).logs, /hi 21/);
      assert.deepEqual(JSON.parse(calls[2].body), { twice: 42, id: 'req-1' });
    } finally {
      child.kill();
      server.close();
    }
  });
});
