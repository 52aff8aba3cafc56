import { searchKeys } from '../keys';
import type { Policy } from '../quant/policy';
import { putJson, type ObjectStore } from '../store/object-store';
import type { EvaluationResult, RoundSummary, SimulationResult } from './results';
import { actRound, initSearch, updateRound } from './rounds';

/**
 * An in-process driver for tests, benchmarks and quick local runs: act -> simulate and
 * evaluate every policy -> update, until the search is done. The production driver is the
 * search state machine, which calls the same three functions from its Lambda handlers.
 */
export interface LoopSteps {
  simulate(policy: Policy, round: number, index: number): Promise<SimulationResult> | SimulationResult;
  evaluate(policy: Policy, round: number, index: number): Promise<EvaluationResult> | EvaluationResult;
}

export interface LoopOptions {
  /** Stop after this round even if the search is not done (to test resume). */
  stopAfterRound?: number;
  /** Start at this round instead of initialising (resume from agent/round-<r>). */
  startRound?: number;
  /** Delete agent/replay checkpoints older than the latest two (they are ~1-3 MB each for ddpg). */
  pruneCheckpoints?: boolean;
  onRound?: (summary: RoundSummary) => void;
}

export async function runSearchLoop(store: ObjectStore, searchId: string, steps: LoopSteps, options: LoopOptions = {}): Promise<RoundSummary> {
  let round = options.startRound ?? 0;
  if (options.startRound === undefined) await initSearch(store, searchId);
  for (;;) {
    const { policies } = await actRound(store, searchId, round);
    for (let i = 0; i < policies.length; i++) {
      await putJson(store, searchKeys.simulation(searchId, round, i), await steps.simulate(policies[i], round, i));
      await putJson(store, searchKeys.evaluation(searchId, round, i), await steps.evaluate(policies[i], round, i));
    }
    const summary = await updateRound(store, searchId, round);
    options.onRound?.(summary);
    if (options.pruneCheckpoints && round >= 1) {
      for (const key of [searchKeys.agent(searchId, round - 1), searchKeys.replay(searchId, round - 1)]) {
        if (await store.exists(key)) await store.delete(key);
      }
    }
    if (summary.done || (options.stopAfterRound !== undefined && round >= options.stopAfterRound)) return summary;
    round = summary.nextRound;
  }
}
