// The ESM entry (package.json "exports" → import): the CommonJS build, re-exported by name, so
// that `import` and `require` share one instance of the package (one addon, one set of servers).
export * from './index.js';
