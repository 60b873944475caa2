// Builds every service with its dependencies passed explicitly (no globals).
// Each service adds its field to Services and its construction to createServices.

import type { ImageService } from './images.js';

export interface DaemonConfig {
  dataRoot: string;   // default /var/lib/berth
  execRoot: string;   // default /run/berth
  hosts: string[];    // unix:///run/berth/berth.sock, tcp://...
  logLevel: string;
  /** OCI runtimes by name; "berth" is the bundled one. */
  runtimes: Record<string, { path: string; runtimeArgs?: string[] }>;
  defaultRuntime: string;
  /** Raw daemon.json values, validated. */
  file: Record<string, unknown>;
}

export interface Services {
  config: DaemonConfig;
  images: ImageService;
}
