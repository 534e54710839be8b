// The workflow bundle's entry: every workflow a Warden worker registers.
export { agentTask } from './agent-task';
