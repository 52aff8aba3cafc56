/**
 * Act: `init` creates the round-0 checkpoint (agent, replay buffer; checks the budget);
 * `act` proposes round r's B policies, already repaired to the budget, into
 * rounds/r/policies.json, and returns their indices for the state machine's Map; `select`,
 * after the last round, plans the final choice's candidates (selection/plan.json) and returns
 * their indices for the SelectCandidates Map.
 */
import { actRound, initSearch, planSelectionStep } from '../shared/search/rounds';
import { parse } from '../shared/validate';
import { ActInput, type ActOutput } from './lib/contracts';
import { instrument, lambdaHandler, maybeInjectFault, type HandlerDeps } from './lib/runtime';
import { writeStatus } from './lib/status';

export const makeHandler = (deps: HandlerDeps) =>
  instrument('act', deps, async (event: unknown): Promise<ActOutput> => {
    const input = parse(ActInput, event, 'Act input');
    if (input.mode === 'select') {
      const plan = await planSelectionStep(deps.stores.work, input.searchId);
      return { round: 0, indices: plan.candidates.map((_, i) => i) };
    }
    if (input.mode === 'init') {
      const init = await initSearch(deps.stores.work, input.searchId);
      await writeStatus(deps.stores.work, input.searchId, { episodesTotal: init.episodesTotal }, deps.now());
      return { round: 0, indices: [] };
    }
    await maybeInjectFault(deps, 'act', input.searchId, `${input.round}`);
    const round = await actRound(deps.stores.work, input.searchId, input.round);
    return { round: input.round, indices: round.policies.map((_, i) => i) };
  });

export const handler = lambdaHandler('act', makeHandler);
