/**
 * The pipeline: the single-writer consumer of the `tessera-events` queue
 * (dedupe → stitch → traits → computed → segment hook → one atomic write).
 */
export { consumeEvents, recordDeadLetters } from "./consumer";
export { deadLettersApi } from "./dead-letters";
export { enqueueEvents, packEvents } from "./enqueue";
export { type BatchResult, processBatch, StorageError } from "./process";
export { RETENTION_MS, type SweepResult, sweepRetention } from "./retention";
