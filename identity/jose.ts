/**
 * jose, as Warden's modules load it (every value they take from jose comes through here).
 *
 * jose 6 ships ES modules only. Reached through `require`, Node's ES module loader resolves,
 * reads and compiles its ~80 files one by one, none of them with the V8 code cache the CLI's
 * CommonJS modules load with (cli/module-code-cache.ts): about a tenth of `warden run`'s main
 * thread before its task starts (issue 17), and the sandbox host's too. `npm run build` replaces
 * this module's compiled output with jose's own code bundled into one CommonJS file
 * (scripts/build.js, esbuild): the same code, loaded as one module, with the cache; used only while
 * the jose installed beside Warden is the version bundled, so an install that updated jose runs
 * the update (scripts/bundle-jose.js). Run from the sources (tsx), or from a build made without
 * esbuild, it is jose's ES modules as before.
 */
export * from 'jose';
