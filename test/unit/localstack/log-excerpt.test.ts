/** The LocalStack log lines a failed assertion shows: what went wrong in the execution's time window. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { logExcerpt } from '../../localstack/harness';
import { tempDir } from '../../helpers/tmp';

const tmp = tempDir('haq-log-excerpt');
after(tmp.cleanup);

const logLines = [
  '2026-12-02T06:32:00.100  INFO --- [  MainThread] localstack.request.aws     : AWS sts.AssumeRole => 200',
  '2026-12-02T06:32:05.000  WARN --- [  worker-1] l.s.lambda_.provider      : early warning, outside the window',
  '2026-12-02T06:32:10.000  INFO --- [  worker-2] localstack.request.aws     : AWS lambda.Invoke => 200',
  '2026-12-02T06:32:11.000 ERROR --- [  worker-3] l.s.stepfunctions.asl     : task failed',
  'Traceback (most recent call last):',
  '  File "x.py", line 1, in <module>',
  'botocore.exceptions.ConnectionClosedError: Connection was closed before we received a valid response',
  '2026-12-02T06:32:12.000  INFO --- [  worker-4] localstack.request.aws     : AWS s3.GetObject => 404 (NoSuchKey)',
  '2026-12-02T06:32:13.000  INFO --- [  worker-5] haq_localstack.executor    : haq-node abc: respawning the runtime',
  '2026-12-02T06:32:14.000  INFO --- [  worker-6] localstack.request.aws     : AWS s3.PutObject => 200',
  '2026-12-02T06:32:40.000 ERROR --- [  worker-7] l.s.stepfunctions.asl     : later error, outside the window',
];
const log = logLines.join('\n');
const file = join(tmp.dir, 'localstack.log');
writeFileSync(file, log);

describe('logExcerpt', () => {
  it('keeps warnings, errors with their traceback, failed requests and executor lines inside the window', () => {
    const text = logExcerpt(file, new Date('2026-12-02T06:32:09'), new Date('2026-12-02T06:32:20'));
    const lines = text.split('\n').slice(1);
    // From the ERROR at 06:32:11 (with its traceback) to the executor line at 06:32:13.
    assert.deepEqual(lines, logLines.slice(3, 9));
  });

  const quiet: Array<[string, string, string]> = [
    ['a window with only successful requests', '2026-12-02T06:32:13.500', '2026-12-02T06:32:14.500'],
    ['a window before anything', '2026-12-02T06:00:00', '2026-12-02T06:01:00'],
  ];
  for (const [what, from, to] of quiet) {
    it(`says so for ${what}`, () => {
      // 2 s of slack each side: keep the windows clear of the lines around them.
      const text = logExcerpt(file, new Date(new Date(from).getTime() + 2000), new Date(new Date(to).getTime() - 2000));
      assert.match(text, /LocalStack logged no warning, error or failed request/);
    });
  }

  it('says when there is no log to read', () => {
    assert.match(logExcerpt('', new Date(), new Date()), /no LocalStack log/);
  });
});
