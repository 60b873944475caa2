// Exec operations: create, start (hijacked or detached), resize, inspect.
import type { HandlerTable } from './types.js';
import { empty, hijacked, json } from './types.js';
import { outputContentType } from './containers.js';

export function execHandlers(): HandlerTable {
  return {
    ContainerExec(req) {
      return json(req.services.exec.create(req.params.id, (req.body ?? {}) as Record<string, any>), 201);
    },

    async ExecStart(req) {
      const exec = req.services.exec;
      const body = (req.body ?? {}) as { Detach?: boolean; Tty?: boolean; ConsoleSize?: [number, number] };
      const ex = exec.checkStartable(req.params.id);
      if (body.ConsoleSize && !ex.ConsoleSize) ex.ConsoleSize = body.ConsoleSize;
      if (body.Detach) {
        await exec.start(ex.ID, { detach: true });
        return empty(200);
      }
      const tty = body.Tty ?? ex.ProcessConfig.tty;
      const sock = await req.hijack(outputContentType(req.apiVersion, !!tty));
      exec.start(ex.ID, { detach: false, tty }, sock).catch((err: Error) => {
        if (!sock.destroyed) sock.end(`Error: ${err.message}\n`);
      });
      return hijacked();
    },

    async ExecResize(req) {
      await req.services.exec.resize(req.params.id, Number(req.query.h ?? 0), Number(req.query.w ?? 0));
      return empty(200);
    },

    ExecInspect(req) {
      return json(req.services.exec.inspect(req.params.id));
    },
  };
}
