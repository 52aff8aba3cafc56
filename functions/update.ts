/**
 * Update: folds round r's costs and accuracies into the search (rewards, replay buffer, DDPG
 * steps, best policy, history), writes status.json, prunes checkpoints two rounds old, and
 * tells the state machine what is next: done, continue as new (this execution has run
 * config.roundsPerExecution rounds), or the next round.
 */
import { searchKeys } from '../shared/keys';
import { updateRound } from '../shared/search/rounds';
import { parse } from '../shared/validate';
import { UpdateInput, type UpdateOutput } from './lib/contracts';
import { instrument, lambdaHandler, maybeInjectFault, type HandlerDeps } from './lib/runtime';
import { readSearchConfig } from './lib/search-context';
import { writeStatus } from './lib/status';

export const makeHandler = (deps: HandlerDeps) =>
  instrument('update', deps, async (event: unknown): Promise<UpdateOutput> => {
    const input = parse(UpdateInput, event, 'Update input');
    const { work } = deps.stores;
    await maybeInjectFault(deps, 'update', input.searchId, `${input.round}`);
    const config = await readSearchConfig(deps.stores, input.searchId);
    const summary = await updateRound(work, input.searchId, input.round);
    // Round r+1 starts from agent/round-(r+1); a retried Update(r) still needs round r. Older ones go.
    if (input.round >= 1) {
      for (const key of [searchKeys.agent(input.searchId, input.round - 1), searchKeys.replay(input.searchId, input.round - 1)]) {
        if (await work.exists(key)) await work.delete(key);
      }
    }
    await writeStatus(
      work,
      input.searchId,
      {
        round: summary.nextRound,
        episodesDone: summary.episodesDone,
        episodesTotal: summary.episodesTotal,
        bestReward: summary.bestReward,
      },
      deps.now(),
    );
    const roundsThisExecution = summary.nextRound - input.executionStartRound;
    return {
      nextRound: summary.nextRound,
      done: summary.done,
      continueAsNew: !summary.done && roundsThisExecution >= config.roundsPerExecution,
      episodesDone: summary.episodesDone,
      episodesTotal: summary.episodesTotal,
      bestReward: summary.bestReward,
      bestTop1: summary.bestTop1,
      bestScore: summary.bestScore ?? null,
      metric: config.metric === 'auto' ? 'top1' : config.metric,
      budgetUse: summary.budgetUse,
    };
  });

export const handler = lambdaHandler('update', makeHandler);
