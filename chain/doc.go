// Package chain makes a run's audit trail verifiable: every event carries,
// in unmapped.sandtrail_integrity, its run, its sequence number, the hash
// of the run's previous event and its own hash; the run's last event says
// it is the last, how many events the run has, and may sign the chain
// head with ed25519. docs/INTEGRITY.md specifies the format exactly enough
// to write an independent verifier.
//
// Guarantees:
//   - Hashes are computed over the RFC 8785 canonical form of the event
//     ([Canonical]), so an event re-serialised with other key order,
//     whitespace, string escapes or number spelling still verifies.
//   - A [Sealer] numbers and chains one run's events in order and never
//     seals after the final event; its [State] can be saved and restored,
//     so a batch the caller abandons leaves no gap.
//   - A [Verifier] takes events in any order, from any number of runs,
//     files or streams, and reports per run exactly which sequence numbers
//     are missing, which events were altered, re-chained, renumbered,
//     duplicated with different content or injected, whether the final
//     event was seen, its count honest and its signature valid.
//
// What it cannot prove: without a signature anyone who knows the format
// can rewrite a whole run consistently (the chain then detects accidents
// and partial edits, not a careful forger); and a run whose final event
// was never seen cannot be told apart from one still running, or one
// whose tail was cut off.
package chain
