// A Lambda Node.js runtime in one file, speaking LocalStack's executor protocol (the one its
// runtime-init binary speaks inside the Docker image). Started by executor.py with the
// function's environment; one invocation at a time, like a Lambda execution environment.
//
//   LocalStack -> here   POST /invoke {"invoke-id","invoked-function-arn","payload","trace-id"}
//                        answered 202 at once, the work goes on asynchronously
//   here -> LocalStack   POST {LOCALSTACK_RUNTIME_ENDPOINT}/status/{LOCALSTACK_RUNTIME_ID}/ready
//                        (or /error with the init error), then per invocation
//                        POST .../invocations/{id}/logs {"logs"}, then .../response (the
//                        result's JSON) or .../error {"errorType","errorMessage","trace"}.
// errorType is err.name, as in AWS: Step Functions matches Retry/Catch ErrorEquals on it.
/* global fetch, setInterval */
import { createServer } from 'node:http';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { format } from 'node:util';

const env = process.env;
const base = env.LOCALSTACK_RUNTIME_ENDPOINT;
const runtimeId = env.LOCALSTACK_RUNTIME_ID;
const taskRoot = env.LAMBDA_TASK_ROOT ?? process.cwd();
const port = Number(env.HAQ_EXECUTOR_PORT);

const post = async (path, body) => {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  if (!res.ok) process.stderr.write(`haq-node shim: POST ${path} -> ${res.status}\n`);
};

/** AWS's error shape; anything thrown that is not an Error still gets a type. */
export const toErrorPayload = (err) =>
  err instanceof Error
    ? { errorType: err.name || 'Error', errorMessage: err.message, trace: (err.stack ?? '').split('\n') }
    : { errorType: typeof err === 'string' ? 'string' : 'Error', errorMessage: format(err), trace: [] };

/** `dir/file.export` -> the module file (.js, .mjs or .cjs) and the export's name. */
export const resolveHandler = (handler, root) => {
  const dot = handler.lastIndexOf('.');
  if (dot <= 0) throw Object.assign(new Error(`bad handler "${handler}": expected file.export`), { name: 'Runtime.MalformedHandlerName' });
  const stem = resolve(root, handler.slice(0, dot));
  const file = ['.js', '.mjs', '.cjs'].map((ext) => stem + ext).find((f) => existsSync(f));
  if (!file) throw Object.assign(new Error(`Cannot find module '${handler.slice(0, dot)}' in ${root}`), { name: 'Runtime.ImportModuleError' });
  return { file, exportName: handler.slice(dot + 1) };
};

const loadHandler = async () => {
  const { file, exportName } = resolveHandler(env._HANDLER ?? 'index.handler', taskRoot);
  const mod = await import(pathToFileURL(file).href);
  const fn = mod[exportName] ?? mod.default?.[exportName];
  if (typeof fn !== 'function') {
    throw Object.assign(new Error(`${env._HANDLER} is undefined or not exported`), { name: 'Runtime.HandlerNotFound' });
  }
  return fn;
};

// Everything the handler writes during an invocation also goes to that invocation's logs.
let captured = null;
for (const stream of [process.stdout, process.stderr]) {
  const write = stream.write.bind(stream);
  stream.write = (chunk, ...rest) => {
    if (captured) captured.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString());
    return write(chunk, ...rest);
  };
}

const makeContext = (invoke, deadlineMs) => ({
  awsRequestId: invoke['invoke-id'],
  invokedFunctionArn: invoke['invoked-function-arn'],
  functionName: env.AWS_LAMBDA_FUNCTION_NAME,
  functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
  memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
  logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
  logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
  callbackWaitsForEmptyEventLoop: true,
  getRemainingTimeInMillis: () => Math.max(0, deadlineMs - Date.now()),
});

/** Calls a promise-style or a callback-style (event, context, callback) handler. */
const callHandler = (fn, event, context) =>
  new Promise((ok, fail) => {
    const callback = (err, value) => (err ? fail(err) : ok(value));
    try {
      const out = fn(event, context, callback);
      if (out && typeof out.then === 'function') out.then(ok, fail);
      else if (fn.length < 3) ok(out);
    } catch (err) {
      fail(err);
    }
  });

const runInvocation = async (fn, invoke) => {
  const id = invoke['invoke-id'];
  const timeoutS = Number(env.AWS_LAMBDA_FUNCTION_TIMEOUT ?? 3);
  process.env._X_AMZN_TRACE_ID = invoke['trace-id'] ?? '';
  captured = [];
  let outcome;
  try {
    const event = JSON.parse(invoke.payload || 'null');
    const result = await callHandler(fn, event, makeContext(invoke, Date.now() + timeoutS * 1000));
    outcome = { path: 'response', body: JSON.stringify(result ?? null) };
  } catch (err) {
    console.error(`ERROR Invoke Error ${JSON.stringify(toErrorPayload(err))}`);
    outcome = { path: 'error', body: toErrorPayload(err) };
  }
  const logs = captured.join('');
  captured = null;
  await post(`/invocations/${id}/logs`, { logs });
  await post(`/invocations/${id}/${outcome.path}`, outcome.body);
};

const main = async () => {
  // An execution environment does not outlive LocalStack: exit once our parent is gone.
  const parent = process.ppid;
  setInterval(() => process.ppid !== parent && process.exit(0), 1000).unref();
  let fn;
  try {
    fn = await loadHandler();
  } catch (err) {
    console.error(`INIT_REPORT Init Error ${JSON.stringify(toErrorPayload(err))}`);
    await post(`/status/${runtimeId}/error`, toErrorPayload(err));
    process.exit(1);
  }
  let queue = Promise.resolve();
  const server = createServer((req, res) => {
    if (req.method !== 'POST' || req.url !== '/invoke') {
      res.writeHead(404).end();
      return;
    }
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      res.writeHead(202).end();
      const invoke = JSON.parse(Buffer.concat(chunks).toString());
      queue = queue.then(() => runInvocation(fn, invoke)).catch((err) => console.error('haq-node shim:', err));
    });
  });
  server.listen(port, '127.0.0.1', () => {
    post(`/status/${runtimeId}/ready`, {}).catch((err) => {
      console.error('haq-node shim: cannot reach LocalStack:', err);
      process.exit(1);
    });
  });
};

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();

