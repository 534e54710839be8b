/**
 * The sandbox host's first import: its modules (isolated-vm's, zod, jose, the gates...) compile with
 * the code cache of the Warden process that forked it, when that process has one (issue 17: the
 * host boots while `warden run` starts). See cli/module-code-cache.ts for what makes data usable.
 */
import { installParentCodeCache } from '../cli/module-code-cache';

installParentCodeCache('sandbox-host');
