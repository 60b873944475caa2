// Container records: one directory per container under data-root/containers/<id>/, with the
// record in config.json (written atomically). The directory also holds the rw layer, the
// hostname/hosts/resolv.conf files and the json-file log.
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureDir, writeFileAtomic } from './atomic.js';

export interface ContainerState {
  Status: 'created' | 'running' | 'paused' | 'restarting' | 'removing' | 'exited' | 'dead';
  Running: boolean;
  Paused: boolean;
  Restarting: boolean;
  OOMKilled: boolean;
  Dead: boolean;
  Pid: number;
  ExitCode: number;
  Error: string;
  StartedAt: string;
  FinishedAt: string;
  /** Present while the container has a healthcheck (see services/health.ts). */
  Health?: { Status: 'starting' | 'healthy' | 'unhealthy'; FailingStreak: number; Log: { Start: string; End: string; ExitCode: number; Output: string }[] };
}

export interface ContainerRecord {
  Id: string;
  Name: string;            // with the leading "/"
  Created: string;
  Path: string;
  Args: string[];
  Config: Record<string, any>;      // merged with the image config
  HostConfig: Record<string, any>;
  Image: string;                    // sha256:<config digest>
  State: ContainerState;
  RestartCount: number;
  Driver: string;
  Platform: string;
  ExecIDs: string[] | null;
  LogPath: string;
  ResolvConfPath: string;
  HostnamePath: string;
  HostsPath: string;
  /** Which OCI runtime runs it (a key of the daemon's runtimes). */
  Runtime: string;
  /** berth-monitor of the running process, for reconnecting after a daemon restart. */
  MonitorPid?: number;
  /** Endpoints (addresses while running), published ports, sandbox: see services/networks.ts. */
  NetworkSettings?: { Networks: Record<string, any>; Ports: Record<string, Array<{ HostIp: string; HostPort: string }> | null>; SandboxKey: string };
  /** Resolved -v / --mount / image VOLUME / --volumes-from mounts (see services/volumes.ts). */
  MountPoints?: MountPoint[];
  /** Stopped or killed by a user: restart policies leave it alone (also across daemon restarts). */
  HasBeenManuallyStopped?: boolean;
}

/** One resolved mount of a container, shown as Mounts in inspect. */
export interface MountPoint {
  Type: 'volume' | 'bind' | 'tmpfs';
  Name?: string;
  Source: string;
  Destination: string;
  Driver?: string;
  Mode: string;
  RW: boolean;
  Propagation: string;
  /** volume-nocopy / nocopy: no copy-up of image content into an empty volume. */
  NoCopy?: boolean;
  /** The original --mount entry (tmpfs, bind options) for the spec builder. */
  Spec?: import('../oci/docker-types.js').MountSpec;
}

export const ZERO_TIME = '0001-01-01T00:00:00Z';

export class ContainerStore {
  private readonly records = new Map<string, ContainerRecord>();

  constructor(readonly root: string) {}

  dirOf(id: string): string { return join(this.root, id); }

  async load(): Promise<ContainerRecord[]> {
    await ensureDir(this.root);
    this.records.clear();
    for (const id of await readdir(this.root)) {
      if (!/^[0-9a-f]{64}$/.test(id)) continue;
      try {
        const rec = JSON.parse(await readFile(join(this.root, id, 'config.json'), 'utf8')) as ContainerRecord;
        this.records.set(id, rec);
      } catch {
        // A directory without a readable record is a create that crashed half-way: drop it.
        await rm(join(this.root, id), { recursive: true, force: true }).catch(() => {});
      }
    }
    return [...this.records.values()];
  }

  get(id: string): ContainerRecord | undefined { return this.records.get(id); }
  all(): ContainerRecord[] { return [...this.records.values()]; }

  /** Creates the container's directory; the record becomes visible once save() succeeded. */
  async createDir(id: string): Promise<string> {
    const dir = this.dirOf(id);
    await ensureDir(dir, 0o710);
    return dir;
  }

  async save(rec: ContainerRecord): Promise<void> {
    await writeFileAtomic(join(this.dirOf(rec.Id), 'config.json'), JSON.stringify(rec));
    this.records.set(rec.Id, rec);
  }

  async remove(id: string): Promise<void> {
    this.records.delete(id);
    await rm(this.dirOf(id), { recursive: true, force: true });
  }
}
