export type { BookChanges, BookEntry, BookOptions, MistakeBook, ProblemBook } from './book.js';
export { applyChanges, bookSize, compareEntries, emptyBook, emptyProblemBook, retiredProblems, sortEntries, topK } from './book.js';
export { compareText } from './text-order.js';
export { canonicalJson } from './canonical-json.js';
export { BOOK_SCHEMA_VERSION, loadBook, parseBook, saveBook, serializeBook } from './store.js';
export type { StoredBook, StoredPage } from './store.js';
export { ArtifactConflictError, ArtifactError, InvalidArtifactError, MissingArtifactError } from '../artifact-errors.js';
