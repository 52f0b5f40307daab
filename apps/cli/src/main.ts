import { parseArgs } from 'node:util';

import { BACKEND_NAMES, BadRowPolicy, initBackend, parseBackendName } from '@app/mmoe';

import { createCliContext, type CliContext } from './cli.context';
import { evaluateCommand } from './commands/evaluate.command';
import { predictCommand } from './commands/predict.command';
import { trainCommand } from './commands/train.command';

const USAGE = `Usage: npm run cli -- <command> [options]

Commands:
  train     --data train.csv [--valid valid.csv] --spec spec.json --out DIR [--threads N]
            (writes model.mmoe, metrics.json, report.html; N data-parallel training threads on wasm,
            default training.threads, else every core)
  evaluate  --model DIR --data test.csv [--group-by COL]   (JSON metrics on stdout; COL groups rows for GAUC)
  predict   --model DIR --data in.csv --out scores.csv [--id-column COL]

Options:
  --on-bad-row fail|skip   stop at the first malformed row (default) or skip and count them
  --backend ${BACKEND_NAMES.join('|')}   force a TensorFlow.js backend (default: MMOE_BACKEND, else the fastest available)
`;

class UsageError extends Error {}

const OPTIONS = {
  data: { type: 'string' },
  valid: { type: 'string' },
  spec: { type: 'string' },
  out: { type: 'string' },
  model: { type: 'string' },
  'id-column': { type: 'string' },
  'group-by': { type: 'string' },
  'on-bad-row': { type: 'string', default: 'fail' },
  backend: { type: 'string' },
  threads: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type OptionName = keyof typeof OPTIONS;
/** The options every command takes; each command's own are the ones commandOf reads. */
const SHARED_OPTIONS: readonly OptionName[] = ['on-bad-row', 'backend', 'help'];

async function main(argv: string[]): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true, tokens: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  // parseArgs keeps the last of a repeated option: `--out a --out b` is more likely a mistake than a choice.
  const seen = new Set<string>();
  for (const token of parsed.tokens) {
    if (token.kind !== 'option') continue;
    if (seen.has(token.name)) throw new UsageError(`--${token.name} is given twice`);
    seen.add(token.name);
  }
  const { values, positionals } = parsed;
  const [command, ...extra] = positionals;
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  if (!command) throw new UsageError('a command is needed');
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);

  const onBadRow = values['on-bad-row'];
  if (onBadRow !== 'fail' && onBadRow !== 'skip')
    throw new UsageError(`--on-bad-row must be fail or skip (got "${onBadRow}")`);
  // What the command reads: an option it does not read is an error, not silently ignored (`evaluate --spec`).
  const read = new Set<string>(SHARED_OPTIONS);
  const option: CommandOption = (name) => {
    read.add(name);
    return values[name];
  };
  const required = (name: 'data' | 'spec' | 'out' | 'model') => {
    const value = option(name);
    if (!value) throw new UsageError(`${command} needs --${name}`);
    return value;
  };

  // Every usage error is found before the engine starts (loading it takes a while).
  const run = commandOf(command, option, required);
  for (const name of seen) if (!read.has(name)) throw new UsageError(`${command} takes no --${name}`);
  let forced;
  try {
    forced = parseBackendName(values.backend ?? process.env.MMOE_BACKEND);
  } catch (e) {
    throw new UsageError(
      values.backend === undefined
        ? (e as Error).message
        : `--backend must be one of ${BACKEND_NAMES.join(', ')} (got "${values.backend}")`,
    );
  }

  const backend = await initBackend(forced);
  const ctx: CliContext = {
    ...createCliContext(onBadRow as BadRowPolicy),
    backend: `${backend.name} (${backend.detail})`,
  };
  ctx.log(`tfjs backend: ${ctx.backend}`);
  return run(ctx);
}

/** A string option's value, noted as read by the command. */
type CommandOption = (
  name: 'data' | 'spec' | 'out' | 'model' | 'valid' | 'id-column' | 'group-by' | 'threads',
) => string | undefined;

function commandOf(
  command: string,
  option: CommandOption,
  required: (name: 'data' | 'spec' | 'out' | 'model') => string,
): (ctx: CliContext) => Promise<void> {
  switch (command) {
    case 'train': {
      const args = {
        data: required('data'),
        valid: option('valid'),
        spec: required('spec'),
        out: required('out'),
        threads: threadsOf(option('threads')),
      };
      return (ctx) => trainCommand(args, ctx);
    }
    case 'evaluate': {
      const args = { model: required('model'), data: required('data'), groupBy: option('group-by') };
      return (ctx) => evaluateCommand(args, ctx);
    }
    case 'predict': {
      const args = {
        model: required('model'),
        data: required('data'),
        out: required('out'),
        idColumn: option('id-column'),
      };
      if (args.idColumn === '') throw new UsageError('--id-column must name a column');
      return (ctx) => predictCommand(args, ctx);
    }
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

function threadsOf(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  // Digits only: Number() would also take "0x2" and "1e0".
  const n = /^\d{1,4}$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1)) throw new UsageError(`--threads must be a positive integer (got "${value}")`);
  return n;
}

main(process.argv.slice(2)).catch((e: Error) => {
  // The reader of the output went away (`predict --out /dev/stdout | head`): stop as coreutils do, killed by SIGPIPE.
  if ((e as NodeJS.ErrnoException).code === 'EPIPE') process.exit(128 + 13);
  process.stderr.write(`error: ${e.message}\n`);
  if (e instanceof UsageError) process.stderr.write(`\n${USAGE}`);
  process.exit(e instanceof UsageError ? 2 : 1);
});
