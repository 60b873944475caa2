// dockerode ships no types; the tests use it as applications written in JavaScript do.
declare module 'dockerode';
