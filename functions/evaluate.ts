/**
 * Evaluate: accuracy. `baseline` mode scores the FP32 model (the reward's reference);
 * `policy` mode scores one policy of a round, or one shard of the validation set when the
 * state machine splits it (config.evalShards > 1; Update merges the shards); `candidate`
 * mode scores one candidate of the final choice (selection/plan.json) on the selection and
 * test splits, and on validation when the rounds did not. Only `candidate` mode reads the
 * selection split. One onnxruntime session serves every call of a search (EvaluatorCache).
 */
import { InvalidInputError } from '../shared/errors';
import { searchKeys } from '../shared/keys';
import { RoundPolicies } from '../shared/search/results';
import { getJson, putJson } from '../shared/store/object-store';
import { parse } from '../shared/validate';
import { EvaluateInput } from './lib/contracts';
import { instrument, lambdaHandler, maybeInjectFault, type HandlerDeps } from './lib/runtime';
import { EvaluatorCache, selectSplitOf, shardSplit, testSplitOf } from './lib/search-context';
import { CandidateResult, SelectionPlan } from '../shared/search/selection';
import type { Split } from '../shared/data/dataset';

export interface EvaluateOutput {
  key: string;
  top1: number | null;
  metric: string;
  score: number;
  samples: number;
}

export const makeHandler = (deps: HandlerDeps & { evaluators?: EvaluatorCache }) => {
  const evaluators = deps.evaluators ?? new EvaluatorCache();
  return instrument('evaluate', deps, async (event: unknown): Promise<EvaluateOutput> => {
    const input = parse(EvaluateInput, event, 'Evaluate input');
    const ctx = await evaluators.get(deps.stores, input.searchId);
    const session = ctx.evaluator.sessions()[0];
    if (session && !session.optimized && !ctx.slowPathLogged) {
      ctx.slowPathLogged = true;
      deps.logger.warn("policy evaluation runs the plain graph, not onnxruntime's optimized one (slower)", { searchId: input.searchId, reason: session.reason });
    }
    if (input.mode === 'baseline') {
      const result = await ctx.evaluator.evaluateFp32(ctx.val, { metric: ctx.metric });
      const key = searchKeys.baseline(input.searchId);
      await putJson(deps.stores.work, key, result);
      return { key, top1: result.top1, metric: result.metric, score: result.score, samples: result.samples };
    }
    if (input.mode === 'candidate') {
      await maybeInjectFault(deps, 'evaluate', input.searchId, `candidate-${input.index}`);
      const plan = await getJson(deps.stores.work, searchKeys.selectionPlan(input.searchId), SelectionPlan);
      const candidate = plan.candidates[input.index];
      if (!candidate) throw new InvalidInputError(`the selection plan of ${input.searchId} has ${plan.candidates.length} candidates; there is no index ${input.index}`);
      const score = (split: Split) => {
        const options = { metric: ctx.metric };
        return candidate.bits ? ctx.evaluator.evaluate({ layers: candidate.bits }, split, options) : ctx.evaluator.evaluateFp32(split, options);
      };
      const test = await testSplitOf(deps.stores, ctx);
      const result: CandidateResult = {
        index: input.index,
        selectSource: ctx.selectSource,
        val: candidate.evaluateVal ? await score(ctx.val) : null,
        select: await score(await selectSplitOf(deps.stores, ctx)),
        test: test ? await score(test) : null,
      };
      const key = searchKeys.selectionResult(input.searchId, input.index);
      await putJson(deps.stores.work, key, result);
      return { key, top1: result.select.top1, metric: result.select.metric, score: result.select.score, samples: result.select.samples };
    }
    await maybeInjectFault(deps, 'evaluate', input.searchId, `${input.round}-${input.index}-${input.shard}`);
    if (input.shard >= input.shardCount) throw new InvalidInputError(`shard ${input.shard} is not below shardCount ${input.shardCount}`);
    const round = await getJson(deps.stores.work, searchKeys.policies(input.searchId, input.round), RoundPolicies);
    const policy = round.policies[input.index];
    if (!policy) throw new InvalidInputError(`round ${input.round} of ${input.searchId} has ${round.policies.length} policies; there is no index ${input.index}`);
    const shardKey = `${input.shard}/${input.shardCount}`;
    let split = ctx.shards.get(shardKey);
    if (!split) {
      split = shardSplit(ctx.val, input.shard, input.shardCount);
      ctx.shards.set(shardKey, split);
    }
    const result = await ctx.evaluator.evaluate(policy, split, { metric: ctx.metric });
    const key =
      input.shardCount > 1
        ? searchKeys.evaluationShard(input.searchId, input.round, input.index, input.shard)
        : searchKeys.evaluation(input.searchId, input.round, input.index);
    await putJson(deps.stores.work, key, result);
    return { key, top1: result.top1, metric: result.metric, score: result.score, samples: result.samples };
  });
};

export const handler = lambdaHandler('evaluate', makeHandler);
