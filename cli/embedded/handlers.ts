/** The real handlers, wired to filesystem stores for one embedded run. */
import { makeHandler as act } from '../../functions/act';
import { makeHandler as compare } from '../../functions/compare';
import { makeHandler as evaluate } from '../../functions/evaluate';
import { makeHandler as finalize } from '../../functions/finalize';
import { EvaluatorCache } from '../../functions/lib/search-context';
import { silentLogger, type HandlerDeps, type Stores } from '../../functions/lib/runtime';
import { makeHandler as prepare } from '../../functions/prepare';
import { makeHandler as recordFailure } from '../../functions/record-failure';
import { makeHandler as simulate } from '../../functions/simulate';
import { makeHandler as update } from '../../functions/update';
import { FsStore } from '../../shared/store/fs-store';
import type { HandlerMap } from './runner';

export interface LocalStores extends Stores {
  work: FsStore;
  models: FsStore;
  results: FsStore;
}

/** Three folders under `root` (e.g. --out/.haq): work, models, results. */
export function localStores(root: string): LocalStores {
  return { work: new FsStore(`${root}/work`), models: new FsStore(`${root}/models`), results: new FsStore(`${root}/results`) };
}

export interface LocalHandlers {
  handlers: HandlerMap;
  /** Releases the onnxruntime sessions. */
  close(): Promise<void>;
}

export function localHandlers(stores: Stores, options: { faults?: string[]; now?: () => Date; deps?: Partial<HandlerDeps> } = {}): LocalHandlers {
  // The sweep runs up to 4 searches at once (RunSearches MaxConcurrency): never evict a live one.
  const evaluators = new EvaluatorCache(8);
  const deps: HandlerDeps = {
    stores,
    logger: silentLogger(),
    now: options.now ?? (() => new Date()),
    faults: options.faults ?? [],
    ...options.deps,
  };
  return {
    handlers: {
      prepare: prepare(deps),
      simulate: simulate(deps),
      evaluate: evaluate({ ...deps, evaluators }),
      act: act(deps),
      update: update(deps),
      finalize: finalize(deps),
      'record-failure': recordFailure(deps),
      compare: compare(deps),
    },
    close: () => evaluators.close(),
  };
}
