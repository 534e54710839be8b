/**
 * A SQL process's first import: its modules compile with the code cache of the Warden process
 * that forked its sandbox host, when that has one (as sandbox/host-code-cache.ts does for the host).
 */
import { installParentCodeCache } from '../../cli/module-code-cache';

installParentCodeCache('sql-process');
