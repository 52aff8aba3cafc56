import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { InvalidInputError, ObjectNotFoundError } from '../../../shared/errors';
import { S3Store } from '../../../shared/store/s3-store';

/** The SDK client's neighbour: answers GetObject from a map, records whether a body was read or destroyed. */
function fakeS3(objects: Record<string, Uint8Array>) {
  const events: string[] = [];
  const client = {
    async send(command: { input: { Key?: string } }): Promise<unknown> {
      assert.ok(command instanceof GetObjectCommand);
      const body = objects[command.input.Key!];
      if (!body) throw Object.assign(new Error('gone'), { name: 'NoSuchKey' });
      return {
        ContentLength: body.length,
        Body: {
          transformToByteArray: async () => (events.push('read'), body),
          destroy: () => events.push('destroyed'),
        },
      };
    },
  };
  return { client: client as unknown as S3Client, events };
}

describe('S3Store.get', () => {
  it('reads an object and maps a missing key to ObjectNotFoundError', async () => {
    const { client } = fakeS3({ 'a.bin': new Uint8Array([1, 2]) });
    const store = new S3Store('b', client);
    assert.deepEqual(Array.from(await store.get('a.bin')), [1, 2]);
    await assert.rejects(store.get('x'), (e: unknown) => e instanceof ObjectNotFoundError && /x in s3:\/\/b/.test((e as Error).message));
  });

  it('refuses an object over maxBytes from its Content-Length, without reading the body', async () => {
    const { client, events } = fakeS3({ 'models/m/model.onnx': new Uint8Array(5 * 1024 * 1024) });
    const store = new S3Store('models', client);
    await assert.rejects(store.get('models/m/model.onnx', { maxBytes: 1024 * 1024 }), (e: unknown) =>
      e instanceof InvalidInputError && /models\/m\/model\.onnx in s3:\/\/models is 5\.0 MiB, over haq's limit of 1\.0 MiB/.test((e as Error).message));
    assert.deepEqual(events, ['destroyed']);
  });
});
