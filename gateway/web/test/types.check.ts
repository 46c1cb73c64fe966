// Holds sdk/parley.d.ts to sdk/parley.js: `npm run test:types` first has
// tsc derive declarations from parley.js (into test-results/types), which
// type-checks the JavaScript, then compiles this file, which fails when the
// hand-written declarations promise an export or a member that the
// implementation lacks.
import type * as impl from '../test-results/types/parley.js';
import type * as decl from '../sdk/parley.js';

type None<T extends never> = T;

export type Exports = None<Exclude<keyof typeof decl, keyof typeof impl>>;
export type ClientMembers = None<Exclude<keyof decl.ParleyClient, keyof impl.ParleyClient>>;
export type ApiMembers = None<Exclude<keyof decl.ParleyApi, keyof impl.ParleyApi>>;
export type TimelineMembers = None<Exclude<keyof decl.Timeline, keyof impl.Timeline>>;
export type ErrorMembers = None<Exclude<keyof decl.ParleyError, keyof impl.ParleyError>>;
