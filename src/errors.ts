// Errors carried as values from services up to the HTTP layer, in the spirit of Moby's errdefs:
// services throw these; src/server maps each kind to its status code and a {"message"} body.

export class BerthError extends Error {
  readonly status: number = 500;
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** 400: the request is malformed or names an invalid value. */
export class InvalidParameterError extends BerthError { override readonly status = 400; }
/** 401 */
export class UnauthorizedError extends BerthError { override readonly status = 401; }
/** 403 */
export class ForbiddenError extends BerthError { override readonly status = 403; }
/** 404: "No such container: x", "No such image: x", ... */
export class NotFoundError extends BerthError { override readonly status = 404; }
/** 409: name in use, image in use, ... */
export class ConflictError extends BerthError { override readonly status = 409; }
/** 304: e.g. starting a started container. */
export class NotModifiedError extends BerthError { override readonly status = 304; }
/** 501 */
export class NotImplementedError extends BerthError { override readonly status = 501; }
/** 503: swarm endpoints, ... */
export class UnavailableError extends BerthError { override readonly status = 503; }
/** 500 with a message that is safe to show. */
export class SystemError extends BerthError { override readonly status = 500; }

export function statusOf(err: unknown): number {
  return err instanceof BerthError ? err.status : 500;
}
