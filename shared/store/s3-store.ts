import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { InvalidInputError, ObjectExistsError, ObjectNotFoundError } from '../errors';
import { tooLarge, type GetOptions, type ObjectStore, type PutOptions } from './object-store';

/** ObjectStore over one S3 bucket (the AWS SDK v3 client is passed in or built once). */
export class S3Store implements ObjectStore {
  readonly location: string;

  constructor(
    readonly bucket: string,
    readonly client: S3Client = new S3Client({}),
  ) {
    this.location = `s3://${bucket}`;
  }

  /** A store for the bucket named by an environment variable; fails at cold start with its name. */
  static fromEnv(variable = 'WORK_BUCKET', env: NodeJS.ProcessEnv = process.env): S3Store {
    const bucket = env[variable];
    if (!bucket) throw new InvalidInputError(`environment variable ${variable} is not set: it must name the S3 bucket`);
    return new S3Store(bucket, new S3Client({ forcePathStyle: env.AWS_S3_FORCE_PATH_STYLE === 'true' || !!env.AWS_ENDPOINT_URL }));
  }

  async get(key: string, options: GetOptions = {}): Promise<Uint8Array> {
    let out;
    try {
      out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (err) {
      if (isNotFound(err)) throw new ObjectNotFoundError(key, this.location);
      throw err;
    }
    // The size is known from the response headers, before the body is read.
    const size = out.ContentLength ?? 0;
    if (options.maxBytes !== undefined && size > options.maxBytes) {
      (out.Body as { destroy?: () => void } | undefined)?.destroy?.();
      throw tooLarge(key, this.location, size, options.maxBytes);
    }
    return await out.Body!.transformToByteArray();
  }

  async put(key: string, body: Uint8Array | string, options?: PutOptions): Promise<void> {
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: body,
          ContentType: options?.contentType,
          ...(options?.ifAbsent ? { IfNoneMatch: '*' } : {}),
        }),
      );
    } catch (err) {
      const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
      if (options?.ifAbsent && (e?.name === 'PreconditionFailed' || e?.$metadata?.httpStatusCode === 412 || e?.$metadata?.httpStatusCode === 409)) {
        throw new ObjectExistsError(key, this.location);
      }
      throw err;
    }
  }

  async exists(key: string): Promise<boolean> {
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const out = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }),
      );
      for (const item of out.Contents ?? []) if (item.Key) keys.push(item.Key);
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
    return keys.sort();
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
  }
}

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.$metadata?.httpStatusCode === 404;
}
