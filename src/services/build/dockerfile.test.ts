import test from 'ava';
import { expand, keyValues, parseDockerfile, words } from './dockerfile.js';

test('directives, comments, continuations, flags, JSON and shell forms, heredocs', (t) => {
  const df = parseDockerfile([
    '# syntax=docker/dockerfile:1',
    '# escape=\\',
    'ARG BASE=busybox',
    'FROM --platform=linux/amd64 ${BASE} AS build',
    '# a comment',
    'RUN echo one \\',
    '  # comment inside',
    '  two',
    'COPY --chown=1:2 --from=x a b/',
    'CMD ["sh", "-c", "echo hi"]',
    'RUN <<EOF',
    'echo from heredoc',
    'EOF',
    'ENV A=1 B="two words"',
  ].join('\n'));
  t.is(df.warnings.length, 1);
  t.deepEqual(df.instructions.map((i) => i.cmd), ['ARG', 'FROM', 'RUN', 'COPY', 'CMD', 'RUN', 'ENV']);
  t.deepEqual(df.instructions[1]!.flags, { platform: 'linux/amd64' });
  t.is(df.instructions[2]!.rest, 'echo one   two');
  t.deepEqual(df.instructions[3]!.flags, { chown: '1:2', from: 'x' });
  t.deepEqual(df.instructions[4]!.json, ['sh', '-c', 'echo hi']);
  t.deepEqual(df.instructions[5]!.heredocs, [{ name: 'EOF', body: 'echo from heredoc\n' }]);
  t.is(df.instructions[6]!.line, 14);
  t.throws(() => parseDockerfile('FROM x\nBOGUS y'), { message: /line 2: unknown instruction: BOGUS/ });
});

test('expansion and word splitting', (t) => {
  const env = { A: 'x', E: '' };
  t.is(expand('$A ${A} ${B:-def} ${A:+set} ${E:-empty} \\$A', env), 'x x def set empty $A');
  t.deepEqual(words('a "b c" \'d e\' f\\ g'), ['a', 'b c', 'd e', 'f g']);
  t.deepEqual(keyValues('A=1 B="two words"'), [['A', '1'], ['B', 'two words']]);
  t.deepEqual(keyValues('LEGACY some value'), [['LEGACY', 'some value']]);
});
