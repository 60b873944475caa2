// Container names: validation as the Engine does it, and generated "adjective_noun" names.
import { randomInt } from 'node:crypto';
import { InvalidParameterError } from '../errors.js';

const NAME_RE = /^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

/** Returns the canonical form with a leading "/". */
export function normaliseName(name: string): string {
  if (!NAME_RE.test(name)) {
    throw new InvalidParameterError(`Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  }
  return name.startsWith('/') ? name : `/${name}`;
}

// Our own word lists: moods and harbour things, fitting a daemon named after a ship's berth.
const MOODS = ['calm', 'brave', 'eager', 'gentle', 'jolly', 'keen', 'lucid', 'merry', 'nimble', 'proud',
  'quiet', 'rapid', 'steady', 'sunny', 'tidy', 'vivid', 'witty', 'zesty', 'bold', 'clever', 'daring',
  'fancy', 'frosty', 'golden', 'hardy', 'humble', 'lively', 'mellow', 'noble', 'plucky', 'serene', 'swift'];
const THINGS = ['anchor', 'bollard', 'buoy', 'capstan', 'cutter', 'dinghy', 'ferry', 'galley', 'harbor',
  'hawser', 'jetty', 'keel', 'lantern', 'mooring', 'pier', 'pilot', 'quay', 'rudder', 'schooner', 'sextant',
  'skiff', 'sloop', 'tugboat', 'wharf', 'beacon', 'compass', 'dock', 'estuary', 'frigate', 'lighthouse',
  'marina', 'tide'];

export function generateName(taken: (name: string) => boolean): string {
  for (let attempt = 0; ; attempt++) {
    let n = `${MOODS[randomInt(MOODS.length)]}_${THINGS[randomInt(THINGS.length)]}`;
    if (attempt > 10) n += randomInt(100);
    if (!taken(`/${n}`)) return n;
  }
}
