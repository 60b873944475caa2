// A Dockerfile parser: parser directives (escape, syntax), comments, line continuations,
// heredocs (<<EOF for RUN and COPY), instruction flags (--from=, --chown=, ...), JSON (exec) and
// shell forms; and the Engine's variable expansion ($VAR, ${VAR}, ${VAR:-x}, ${VAR:+x}).
import { InvalidParameterError } from '../../errors.js';

export interface Instruction {
  /** Upper-case keyword: FROM, RUN, ... */
  cmd: string;
  /** The text after the keyword and its flags (continuations joined). */
  rest: string;
  /** --name=value flags before the arguments. */
  flags: Record<string, string>;
  /** JSON array form, when the arguments are one. */
  json?: string[];
  /** Heredoc bodies by name, in order. */
  heredocs: Array<{ name: string; body: string }>;
  /** The source line (1-based) the instruction starts on. */
  line: number;
  /** The original text, for "Step N/M : ..." lines. */
  original: string;
}

export interface Dockerfile { escape: string; instructions: Instruction[]; warnings: string[] }

const KNOWN = new Set(['FROM', 'RUN', 'CMD', 'LABEL', 'MAINTAINER', 'EXPOSE', 'ENV', 'ADD', 'COPY', 'ENTRYPOINT', 'VOLUME', 'USER', 'WORKDIR', 'ARG', 'ONBUILD', 'STOPSIGNAL', 'HEALTHCHECK', 'SHELL']);

export function parseDockerfile(text: string): Dockerfile {
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  let escape = '\\';
  const warnings: string[] = [];
  let i = 0;
  // parser directives: only at the very top, before any comment or instruction
  for (; i < lines.length; i++) {
    const m = /^\s*#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.*?)\s*$/.exec(lines[i]!);
    if (!m) break;
    const key = m[1]!.toLowerCase();
    if (key === 'escape') {
      if (m[2] !== '\\' && m[2] !== '`') throw new InvalidParameterError(`invalid escape token '${m[2]}' does not validate`);
      escape = m[2]!;
    } else if (key === 'syntax') {
      warnings.push(`the syntax directive (${m[2]}) is ignored by the classic builder`);
    } else break;
  }
  const instructions: Instruction[] = [];
  while (i < lines.length) {
    const startLine = i + 1;
    let line = lines[i++]!;
    if (/^\s*(#.*)?$/.test(line)) continue;
    // continuations: a trailing escape joins the next line; comment lines inside are dropped
    const parts: string[] = [];
    while (true) {
      const trimmed = line.replace(/\s+$/, '');
      if (trimmed.endsWith(escape) && !(escape === '\\' && trimmed.endsWith('\\\\') && false)) {
        parts.push(trimmed.slice(0, -1));
        if (i >= lines.length) break;
        line = lines[i++]!;
        while (i <= lines.length && /^\s*#/.test(line)) { if (i >= lines.length) { line = ''; break; } line = lines[i++]!; }
        continue;
      }
      parts.push(line);
      break;
    }
    const full = parts.join('');
    const m = /^\s*(\S+)\s*(.*)$/s.exec(full);
    if (!m) continue;
    const cmd = m[1]!.toUpperCase();
    if (!KNOWN.has(cmd)) throw new InvalidParameterError(`dockerfile parse error on line ${startLine}: unknown instruction: ${m[1]}`);
    let rest = m[2]!;
    const flags: Record<string, string> = {};
    if (cmd !== 'RUN' || true) {
      let f;
      while ((f = /^--([a-zA-Z][a-zA-Z0-9-]*)(?:=(\S*))?\s+/.exec(rest)) && ['FROM', 'COPY', 'ADD', 'RUN', 'HEALTHCHECK'].includes(cmd)) {
        flags[f[1]!] = f[2] ?? 'true';
        rest = rest.slice(f[0].length);
      }
    }
    // heredocs: <<EOF / <<-EOF / <<"EOF" markers, bodies follow the instruction line
    const heredocs: Array<{ name: string; body: string }> = [];
    if (cmd === 'RUN' || cmd === 'COPY' || cmd === 'ADD') {
      const re = /<<(-?)(["']?)([A-Za-z_][A-Za-z0-9_]*)\2/g;
      let h;
      while ((h = re.exec(rest))) {
        const body: string[] = [];
        while (i < lines.length && lines[i]!.replace(h[1] ? /^\t+/ : /$^/, '') !== h[3]) body.push(h[1] ? lines[i++]!.replace(/^\t+/, '') : lines[i++]!);
        if (i >= lines.length) throw new InvalidParameterError(`dockerfile parse error on line ${startLine}: unterminated heredoc ${h[3]}`);
        i++; // the terminator
        heredocs.push({ name: h[3]!, body: body.join('\n') + '\n' });
      }
    }
    let json: string[] | undefined;
    if (/^\s*\[/.test(rest)) {
      try {
        const v = JSON.parse(rest.trim());
        if (Array.isArray(v) && v.every((x) => typeof x === 'string')) json = v;
      } catch { /* shell form after all */ }
    }
    instructions.push({ cmd, rest: rest.trim(), flags, json, heredocs, line: startLine, original: full.trim() });
  }
  return { escape, instructions, warnings };
}

/** Expands $VAR, ${VAR}, ${VAR:-word}, ${VAR:+word}; the escape character protects a `$`. */
export function expand(s: string, env: Record<string, string>, escape = '\\'): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === escape && s[i + 1] === '$') { out += '$'; i++; continue; }
    if (c !== '$') { out += c; continue; }
    if (s[i + 1] === '{') {
      const end = s.indexOf('}', i + 2);
      if (end < 0) throw new InvalidParameterError(`missing '}' in substitution: ${s}`);
      const inner = s.slice(i + 2, end);
      i = end;
      const m = /^([A-Za-z_][A-Za-z0-9_]*)(?::([-+])(.*))?$/s.exec(inner);
      if (!m) throw new InvalidParameterError(`unsupported modifier in substitution: \${${inner}}`);
      const v = env[m[1]!];
      if (m[2] === '-') out += v !== undefined && v !== '' ? v : expand(m[3] ?? '', env, escape);
      else if (m[2] === '+') out += v !== undefined && v !== '' ? expand(m[3] ?? '', env, escape) : '';
      else out += v ?? '';
      continue;
    }
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(s.slice(i + 1));
    if (!m) { out += '$'; continue; }
    out += env[m[0]] ?? '';
    i += m[0].length;
  }
  return out;
}

/** Splits shell-like words (quotes kept together, quotes removed), as ENV/LABEL/COPY arguments. */
export function words(s: string, escape = '\\'): string[] {
  const out: string[] = [];
  let cur = '';
  let quote: string | null = null;
  let any = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === escape && i + 1 < s.length && quote !== "'") { cur += s[++i]; any = true; continue; }
    if (quote) { if (c === quote) quote = null; else cur += c; continue; }
    if (c === '"' || c === "'") { quote = c; any = true; continue; }
    if (/\s/.test(c)) { if (any || cur) { out.push(cur); cur = ''; any = false; } continue; }
    cur += c; any = true;
  }
  if (quote) throw new InvalidParameterError(`unterminated quote in: ${s}`);
  if (any || cur) out.push(cur);
  return out;
}

/** KEY=value pairs (ENV, LABEL, ARG), or the legacy `ENV key value` form. */
export function keyValues(s: string, escape = '\\'): Array<[string, string]> {
  const w = words(s, escape);
  if (w.length && !w[0]!.includes('=')) {
    // legacy form: the first word is the key, the rest (as written) the value
    const m = /^\s*(\S+)\s+(.*)$/s.exec(s);
    return [[w[0]!, m ? words(m[2]!, escape).join(' ') : '']];
  }
  return w.map((x) => {
    const i = x.indexOf('=');
    if (i <= 0) throw new InvalidParameterError(`${x} is not a valid KEY=value pair`);
    return [x.slice(0, i), x.slice(i + 1)] as [string, string];
  });
}
