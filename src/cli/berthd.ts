// berthd: the daemon's entry point. Flags follow dockerd's (see --help).
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadConfig, USAGE } from './config.js';
import { startDaemon, DaemonStartError } from '../server/daemon.js';
import { createLogger } from '../server/log.js';
import { checkDataRoot } from '../store/check.js';
import { ENGINE_VERSION, MAX_API_VERSION } from '../server/version.js';

// dist/src/cli/berthd.js -> repository root
const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** `berthd check --data-root DIR [--exec-root DIR]`: offline consistency check; exit 1 on problems. */
async function check(args: string[]): Promise<number> {
  const opt = (name: string, dflt: string) => { const i = args.indexOf(name); return i >= 0 && args[i + 1] ? args[i + 1]! : dflt; };
  const problems = await checkDataRoot(opt('--data-root', '/var/lib/berth'), opt('--exec-root', '/run/berth'));
  for (const p of problems) process.stdout.write(`${p}\n`);
  process.stdout.write(`${problems.length} problem${problems.length === 1 ? '' : 's'} found\n`);
  return problems.length ? 1 : 0;
}

async function main(): Promise<number> {
  if (process.argv[2] === 'check') return check(process.argv.slice(3));
  let cli;
  try {
    cli = await loadConfig(process.argv.slice(2), REPO_ROOT);
  } catch (e) {
    if (e instanceof ConfigError) { process.stderr.write(`berthd: ${e.message}\n`); return 1; }
    throw e;
  }
  if (cli.kind === 'help') { process.stdout.write(USAGE); return 0; }
  if (cli.kind === 'version') { process.stdout.write(`Berth version ${ENGINE_VERSION} (API ${MAX_API_VERSION})\n`); return 0; }
  if (cli.kind !== 'run') return 1;
  const config = cli.config;
  const log = createLogger(config.logLevel);
  if (process.getuid?.() !== 0) log.warn('berthd is not running as root: containers will not start');
  process.on('unhandledRejection', (err) => log.error('unhandled rejection', { error: (err as Error)?.stack ?? String(err) }));

  // Signal handlers go in before the socket exists: a client may ping and then stop us at once.
  const signalled = new Promise<void>((resolve) => {
    let seen = false;
    const onSignal = (sig: NodeJS.Signals): void => {
      if (seen) { log.warn(`second ${sig}: exiting now`); process.exit(1); }
      seen = true;
      log.info(`Processing signal '${sig}'`);
      resolve();
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });

  let daemon;
  try {
    daemon = await startDaemon({
      config,
      log,
      pidfile: config.pidfile,
      tls: config.tls.tls ? { verify: config.tls.verify, ca: config.tls.ca, cert: config.tls.cert!, key: config.tls.key! } : undefined,
    });
  } catch (e) {
    process.stderr.write(`berthd: ${e instanceof DaemonStartError ? e.message : (e as Error).stack ?? e}\n`);
    return 1;
  }
  log.info('Daemon has completed initialization', { version: ENGINE_VERSION, dataRoot: config.dataRoot, runtime: config.defaultRuntime });

  await signalled;
  await daemon.stop();
  log.info('Daemon shutdown complete');
  return 0;
}

main().then((code) => process.exit(code), (err) => {
  process.stderr.write(`berthd: ${(err as Error)?.stack ?? err}\n`);
  process.exit(1);
});
