// Placeholder until the embedded Temporal server manager lands: starts nothing.
export default async function setup(): Promise<void> {}
