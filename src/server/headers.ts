// Headers the Engine puts on every response.
import { MAX_API_VERSION, SERVER_HEADER } from './version.js';

export function standardHeaders(): Record<string, string> {
  return {
    'Api-Version': MAX_API_VERSION,
    'Docker-Experimental': 'false',
    'Ostype': 'linux',
    'Server': SERVER_HEADER,
  };
}

export const STATUS_TEXT: Record<number, string> = {
  101: 'Switching Protocols', 200: 'OK', 201: 'Created', 204: 'No Content', 304: 'Not Modified',
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
  409: 'Conflict', 413: 'Payload Too Large', 500: 'Internal Server Error', 501: 'Not Implemented', 503: 'Service Unavailable',
};

/** An HTTP/1.1 response head for writing straight to a socket. */
export function rawHead(status: number, headers: Record<string, string>, statusText = STATUS_TEXT[status] ?? 'Unknown'): string {
  let s = `HTTP/1.1 ${status} ${statusText}\r\n`;
  for (const [k, v] of Object.entries(headers)) s += `${k}: ${v}\r\n`;
  return s + '\r\n';
}
