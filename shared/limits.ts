/**
 * The largest inputs haq reads, checked before an object is loaded so that a huge upload
 * fails at once with a clear message instead of exhausting a Lambda's memory.
 * Models: protobuf caps a message at 2 GiB, and Evaluate holds the model, its fake-quant
 * rewrite and an onnxruntime session at once. Data: the evaluation splits are held in memory.
 */
const MiB = 1024 * 1024;

export const limits = {
  modelBytes: 512 * MiB,
  dataFileBytes: 1024 * MiB,
  /** search.json, policy files, custom target descriptions, sweep configs. */
  jsonBytes: 4 * MiB,
} as const;

/** `1.5 GiB`, `12.0 MiB`, `900 B`: sizes in messages. */
export function formatBytes(bytes: number): string {
  if (bytes >= 1024 * MiB) return `${(bytes / (1024 * MiB)).toFixed(1)} GiB`;
  if (bytes >= MiB) return `${(bytes / MiB).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes} B`;
}
