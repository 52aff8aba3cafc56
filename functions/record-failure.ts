/**
 * RecordFailure: the Catch target of every step. Writes status.json state 'failed' with the
 * error's name and message, releases the search's lock if it holds it, and touches nothing
 * else: earlier policies in the results bucket stay as they were.
 */
import { parse } from '../shared/validate';
import { instrument, lambdaHandler, type HandlerDeps } from './lib/runtime';
import { RecordFailureInput } from './lib/contracts';
import { searchRequest } from './lib/search-input';
import { releaseLock } from './lib/lock';
import { lockScope, readConfig, writeStatus } from './lib/status';

export interface RecordFailureOutput {
  searchId: string | null;
  error: { name: string; message: string };
}

/** Step Functions puts a Lambda error's JSON ({ errorType, errorMessage, trace }) in Cause. */
export function errorFromCatch(error: { Error: string; Cause?: string } | undefined): { name: string; message: string } {
  if (!error) return { name: 'Unknown', message: 'the execution failed without an error record' };
  let message = error.Cause ?? '';
  try {
    const cause = JSON.parse(message) as { errorMessage?: unknown };
    if (typeof cause.errorMessage === 'string') message = cause.errorMessage;
  } catch {
    // plain text cause
  }
  // Local runners prefix the message with the error name ("Name: message").
  if (message.startsWith(`${error.Error}: `)) message = message.slice(error.Error.length + 2);
  return { name: error.Error, message: message || error.Error };
}

export const makeHandler = (deps: HandlerDeps) =>
  instrument('record-failure', deps, async (event: unknown): Promise<RecordFailureOutput> => {
    const input = parse(RecordFailureInput, event, 'RecordFailure input');
    const error = errorFromCatch(input.state.error);
    let searchId = input.state.searchId ?? null;
    if (!searchId) {
      try {
        const execution = input.execution as { resume?: { searchId?: string } } | null;
        searchId = execution?.resume?.searchId ?? searchRequest(input.execution).searchId;
      } catch {
        searchId = null; // the input itself was unreadable: nothing to write a status under
      }
    }
    if (!searchId) {
      deps.logger.error('search failed before it had an id', { error });
      return { searchId: null, error };
    }
    await writeStatus(deps.stores.work, searchId, { state: 'failed', error }, deps.now());
    try {
      const config = await readConfig(deps.stores.work, searchId);
      await releaseLock(deps.stores.work, lockScope(config), searchId);
    } catch {
      // no config yet: Prepare failed before taking the lock
    }
    return { searchId, error };
  });

export const handler = lambdaHandler('record-failure', makeHandler);
