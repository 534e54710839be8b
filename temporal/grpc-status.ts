/**
 * gRPC status codes Warden reads from Temporal's answers
 * (https://grpc.github.io/grpc/core/md_doc_statuscodes.html). No imports: recovery code that
 * talks to the WorkflowService without loading the Temporal SDK uses it too.
 */

/** gRPC status NOT_FOUND. */
export const GRPC_NOT_FOUND = 5;

/** Whether `error` is a gRPC answer NOT_FOUND (its `code`, as @grpc/grpc-js and Temporal's native connection set it). */
export function isGrpcNotFound(error: unknown): boolean {
  return (error as { code?: unknown } | null | undefined)?.code === GRPC_NOT_FOUND;
}

/** gRPC status UNIMPLEMENTED: the server has no such method (a gRPC server that is not Temporal's frontend). */
export const GRPC_UNIMPLEMENTED = 12;

/** Whether `error` is a gRPC answer UNIMPLEMENTED. */
export function isGrpcUnimplemented(error: unknown): boolean {
  return (error as { code?: unknown } | null | undefined)?.code === GRPC_UNIMPLEMENTED;
}
