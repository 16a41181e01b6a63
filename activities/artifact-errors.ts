import { nonRetryableErrors } from '../workflows/contract.js';

/**
 * Errors of stored artifacts. Their names are the contract's non-retryable error types, so an
 * activity can rethrow them as `ApplicationFailure.nonRetryable(message, error.name)`.
 */
export class ArtifactError extends Error {
  constructor(
    readonly type: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = type;
  }
}

/** An artifact an earlier stage must have written is not there. */
export class MissingArtifactError extends ArtifactError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(nonRetryableErrors.missingArtifact, message, options);
  }
}

/** A stored artifact is malformed or has an unknown schema version. */
export class InvalidArtifactError extends ArtifactError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(nonRetryableErrors.invalidArtifact, message, options);
  }
}

/** A write-once artifact already exists with different content; it is never overwritten. */
export class ArtifactConflictError extends ArtifactError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(nonRetryableErrors.artifactConflict, message, options);
  }
}
