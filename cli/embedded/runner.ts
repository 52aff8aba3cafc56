/**
 * The embedded runner: executes the SAME statemachines/*.asl.json that Step Functions runs,
 * with aws-local-stepfunctions, every Task mapped to the real handler (`makeHandler` over
 * filesystem stores). Step Functions' own integrations are emulated in process:
 * `states:startExecution` (continue-as-new) queues the next execution, which runs when the
 * current one has ended, as on AWS; `startExecution.sync:2` (sweeps) runs the whole chain
 * and returns its output.
 */
import './polyfill';
import { StateMachine } from 'aws-local-stepfunctions';
import { allStates, loadDefinition, localMachineArn, type MachineName } from './asl';

export type HandlerFn = (event: unknown) => Promise<unknown>;
/** Handlers by file name: prepare, simulate, evaluate, act, update, finalize, record-failure, compare. */
export type HandlerMap = Record<string, HandlerFn>;

export interface TaskEvent {
  machine: MachineName;
  /** 1-based execution number within this run (continue-as-new starts the next). */
  execution: number;
  state: string;
  fn: string;
  input: unknown;
  output?: unknown;
  error?: { name: string; message: string };
  startMs: number;
  ms: number;
}

export interface RunnerOptions {
  handlers: HandlerMap;
  onTask?: (event: TaskEvent) => void;
  /** Replaces every Retry interval (ms); tests use 0. Default: the ASL's own backoff. */
  retryDelayMs?: number;
  /** Replaces every Wait state's duration (ms). Default 0: nothing runs in the background here. */
  waitMs?: number;
  /** Iterations of each search Map state at once, the ASL's `${MapConcurrency}` (default localMapConcurrency, 2). */
  mapConcurrency?: number;
}

export interface ExecutionOutcome {
  status: 'SUCCEEDED' | 'FAILED';
  output?: unknown;
  error?: { name: string; cause: string };
  /** Executions run for this chain (1 + continue-as-new hand-overs). */
  executions: number;
}

interface PendingStart {
  machine: MachineName;
  name: string;
  input: unknown;
}

const localFunctionPrefix = 'arn:aws:lambda:local-1:000000000000:function:haq-';

function machineFromArn(arn: string): MachineName {
  if (arn === localMachineArn('search')) return 'search';
  if (arn === localMachineArn('sweep')) return 'sweep';
  throw new Error(`the embedded runner knows no state machine ${arn}`);
}

export class EmbeddedRunner {
  private executionCounter = 0;
  private readonly options: RunnerOptions;

  constructor(options: RunnerOptions) {
    this.options = options;
  }

  /** Runs an execution and every execution it hands over to; the last one's outcome is the chain's. */
  async runChain(machine: MachineName, input: unknown, name?: string): Promise<ExecutionOutcome> {
    let next: PendingStart | null = { machine, name: name ?? `${machine}-${this.executionCounter + 1}`, input };
    let executions = 0;
    let outcome: ExecutionOutcome = { status: 'FAILED', executions: 0 };
    while (next) {
      const current: PendingStart = next;
      next = null;
      executions++;
      const started: PendingStart[] = [];
      outcome = await this.runOnce(current, started);
      if (started.length > 1) throw new Error(`execution ${current.name} started ${started.length} continuations; expected at most one`);
      next = started[0] ?? null;
      if (next && outcome.status === 'FAILED') next = null;
    }
    return { ...outcome, executions };
  }

  private async runOnce(exec: PendingStart, started: PendingStart[]): Promise<ExecutionOutcome> {
    const executionNumber = ++this.executionCounter;
    const definition = loadDefinition(exec.machine, this.options.mapConcurrency);
    const machineArn = localMachineArn(exec.machine);
    const sm = new StateMachine(definition as never, { validationOptions: { checkArn: true, checkPaths: true } });
    const taskHandlers: Record<string, (input: unknown) => Promise<unknown>> = {};
    const retryIntervalOverrides: Record<string, number> = {};
    const waitTimeOverrides: Record<string, number> = {};
    for (const { name, state } of allStates(definition)) {
      if (state.Retry && this.options.retryDelayMs !== undefined) retryIntervalOverrides[name] = this.options.retryDelayMs;
      if (state.Type === 'Wait') waitTimeOverrides[name] = this.options.waitMs ?? 0;
      if (state.Type !== 'Task') continue;
      const resource = String(state.Resource);
      if (resource.startsWith(localFunctionPrefix)) {
        const fn = resource.slice(localFunctionPrefix.length);
        const handler = this.options.handlers[fn];
        if (!handler) throw new Error(`state ${name} calls functions/${fn}.ts but the runner has no handler for it`);
        taskHandlers[name] = (input) => this.timed(exec.machine, executionNumber, name, fn, input, () => handler(input));
      } else if (resource === 'arn:aws:states:::states:startExecution') {
        taskHandlers[name] = async (input) => {
          const p = input as { StateMachineArn: string; Name?: string; Input?: unknown };
          const child: PendingStart = {
            machine: machineFromArn(p.StateMachineArn),
            name: p.Name ?? `${exec.name}-next`,
            input: typeof p.Input === 'string' ? JSON.parse(p.Input) : p.Input,
          };
          started.push(child);
          return { ExecutionArn: `${p.StateMachineArn.replace(':stateMachine:', ':execution:')}:${child.name}`, StartDate: new Date().toISOString() };
        };
      } else if (resource === 'arn:aws:states:::states:startExecution.sync:2') {
        taskHandlers[name] = async (input) => {
          const p = input as { StateMachineArn: string; Name?: string; Input?: unknown };
          const childInput = typeof p.Input === 'string' ? JSON.parse(p.Input) : p.Input;
          const outcome = await this.runChain(machineFromArn(p.StateMachineArn), childInput, p.Name);
          if (outcome.status === 'FAILED') {
            const err = new Error(JSON.stringify({ Error: outcome.error?.name, Cause: outcome.error?.cause }));
            err.name = 'States.TaskFailed';
            throw err;
          }
          return { Status: 'SUCCEEDED', Output: outcome.output, ExecutionArn: `${p.StateMachineArn}:${p.Name ?? 'child'}` };
        };
      } else {
        throw new Error(`state ${name}: the embedded runner cannot run resource ${resource}`);
      }
    }
    const executionArn = `${machineArn.replace(':stateMachine:', ':execution:')}:${exec.name}`;
    const execution = sm.run(exec.input as never, {
      overrides: { taskResourceLocalHandlers: taskHandlers, retryIntervalOverrides, waitTimeOverrides },
      context: {
        Execution: { Id: executionArn, Name: exec.name },
        StateMachine: { Id: machineArn, Name: `haq-${exec.machine}` },
      },
    } as never);
    try {
      const output = await execution.result;
      return { status: 'SUCCEEDED', output, executions: 1 };
    } catch (err) {
      const cause = (err as { cause?: { name?: string; message?: string } }).cause;
      return {
        status: 'FAILED',
        error: { name: cause?.name ?? (err as Error).name, cause: cause?.message ?? (err as Error).message },
        executions: 1,
      };
    }
  }

  private async timed(machine: MachineName, execution: number, state: string, fn: string, input: unknown, run: () => Promise<unknown>): Promise<unknown> {
    const startMs = performance.now();
    try {
      const output = await run();
      this.options.onTask?.({ machine, execution, state, fn, input, output, startMs, ms: performance.now() - startMs });
      return output;
    } catch (err) {
      const e = err as Error;
      this.options.onTask?.({ machine, execution, state, fn, input, error: { name: e?.name, message: e?.message }, startMs, ms: performance.now() - startMs });
      throw err;
    }
  }
}
